"""yilian.contracts."""
