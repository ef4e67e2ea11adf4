"""yilian.sdk."""
