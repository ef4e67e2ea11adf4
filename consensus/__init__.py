"""yilian.consensus."""
