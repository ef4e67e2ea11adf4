"""Every in-memory structure that could grow with the chain's history stays under its bound.

Each test feeds one structure far more history (blocks, queried addresses, late votes)
than its bound and checks the size afterwards; ``python -m yilian.bench.soak`` measures the
effect on a running network (flat RSS and latency).
"""

from __future__ import annotations

import os

from test_mempool import make_pool


def test_pending_nonce_queries_do_not_grow_the_nonce_cache() -> None:
    # eth_getTransactionCount(addr, "pending") is unauthenticated and answers for any
    # address: each distinct address queried must not stay cached.
    pool, chain = make_pool()
    for _ in range(2_000):
        address = os.urandom(20)
        chain.nonces[address] = 7
        assert pool.pending_nonce(address) == 7
    assert len(pool._next_nonce) == 0
