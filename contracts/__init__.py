"""yilian.contracts: the Vyper domain contracts (``src/*.vy``, ``compiled/``), their ABI,
predeploy addresses, artifacts and build step. The formats node and SDK share otherwise
(data standard, envelope, signed requests, ...) are in :mod:`yilian.protocol`."""
