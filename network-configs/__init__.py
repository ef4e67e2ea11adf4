"""yilian.network-configs."""
