"""yilian.node."""
