"""Which Keccak-256 implementation this process hashes with.

Everything that hashes (py-evm, the trie, eth-utils, our own code) calls the one
``eth_hash.auto.keccak`` object. eth-hash picks its backend on the first call, trying
pycryptodome first, whose per-call set-up costs ~5 µs; a node hashes for every storage key,
trie node and log, and in the records benchmark spent about 15% of its CPU there. The
``pysha3`` backend (the ``safe-pysha3`` wheel, what ``eth-hash[pysha3]`` installs) costs
~0.7 µs a call. Both compute the same function (checked on the standard vectors before the
switch), so the choice changes speed only, never a hash, a state root or consensus.
"""

from __future__ import annotations

import logging

from eth_hash.auto import keccak

_log = logging.getLogger(__name__)

# keccak256(b"") and keccak256(b"abc")
_VECTORS = {
    b"": "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
    b"abc": "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
}


def use_fastest_keccak() -> str:
    """Hash with pysha3 when it is installed and answers the vectors; the backend's name."""
    try:
        from eth_hash.backends.pysha3 import backend
    except ImportError:
        _log.warning("safe-pysha3 is not installed: hashing with pycryptodome (slower)")
        return "pycryptodome"
    if any(backend.keccak256(data).hex() != digest for data, digest in _VECTORS.items()):
        _log.error("the pysha3 backend gives wrong Keccak-256 digests: not using it")
        return "pycryptodome"
    # eth-hash's own way to swap the hasher in (its first-run hook does the same);
    # setattr because its attribute types name the unbound form
    setattr(keccak, "hasher", backend.keccak256)  # noqa: B010
    setattr(keccak, "preimage", backend.preimage)  # noqa: B010
    return "pysha3"
