"""yilian.cli: the ``yilian`` command line and the local-network process tooling."""
