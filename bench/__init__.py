"""yilian.bench."""
