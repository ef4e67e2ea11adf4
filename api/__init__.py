"""yilian.api."""
