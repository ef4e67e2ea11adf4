"""Every in-memory structure that could grow with the chain's history stays under its bound.

Each test feeds one structure far more history (blocks, queried addresses, late votes)
than its bound and checks the size afterwards; ``python -m yilian.bench.soak`` measures the
effect on a running network (flat RSS and latency).
"""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import pytest
from eth.db.chain import ChainDB
from eth.db.trie import _make_trie_root_and_nodes
from helpers import KEYS, make_node, produce_all, sign_transfer
from test_mempool import make_pool
from test_p2p_transport import APP, close_all, start_mesh
from test_p2p_transport import Node as P2pNode
from trie import HexaryTrie

from tests.p2p_identities import ed25519_identity
from yilian.node import chain

MIB = 1024 * 1024


def test_pending_nonce_queries_do_not_grow_the_nonce_cache() -> None:
    # eth_getTransactionCount(addr, "pending") is unauthenticated and answers for any
    # address: each distinct address queried must not stay cached.
    pool, chain = make_pool()
    for _ in range(2_000):
        address = os.urandom(20)
        chain.nonces[address] = 7
        assert pool.pending_nonce(address) == 7
    assert len(pool._next_nonce) == 0


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


def test_committed_blocks_leave_no_evm_memo_behind(tmp_path: Path) -> None:
    # py-evm memoises trie nodes per pruning trie, block transactions per ChainDB and trie
    # roots per block in process-wide lru_caches: keyed by objects of past blocks and
    # requests, they kept thousands of entries (and those objects) alive.
    tries, chaindbs = _live(HexaryTrie), _live(ChainDB)  # other tests' objects
    node = make_node(tmp_path)
    try:
        for n in range(30):
            for k in range(4):
                node.submit(sign_transfer(KEYS[k], n))
            committed = produce_all(node)
            assert committed is not None and len(committed.block.transactions) == 4
            node.core.block_by_header(node.core.header_by_number(max(1, n - 20)))  # old block
        assert _make_trie_root_and_nodes.cache_info().currsize <= 4
        assert HexaryTrie._cached_create_node_to_db_mapping.cache_info().currsize == 0
        assert ChainDB._get_block_transactions.cache_info().currsize <= 1
        assert _live(HexaryTrie) - tries <= 8
        assert _live(ChainDB) - chaindbs <= 4
    finally:
        node.stop()


def test_recent_blocks_are_bounded_by_transactions_too(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Decoded recent blocks are served from memory; 32 blocks of 2,000 transactions each
    # would be hundreds of MB, so the cache also stops at RECENT_BLOCK_TXS transactions.
    monkeypatch.setattr(chain, "RECENT_BLOCK_TXS", 10, raising=False)
    node = make_node(tmp_path)
    try:
        for n in range(6):
            for k in range(4):
                node.submit(sign_transfer(KEYS[k], n))
            produce_all(node)
        cached = list(node.core._recent_blocks.values())
        assert [b.number for b in cached] == [5, 6]  # the newest that fit in 10 txs
        assert sum(len(b.transactions) for b in cached) == node.core._recent_txs == 8
        header = node.core.header_by_number(2)
        assert header is not None and len(node.core.block_by_header(header).transactions) == 4
    finally:
        node.stop()


def test_p2p_send_queue_is_bounded_in_bytes() -> None:
    # A peer that does not read made us hold up to send_queue_size frames (the driver
    # uses 4,096 of up to 64 MiB each); the queue now also stops at send_queue_bytes.
    async def scenario() -> tuple[list[bool], int]:
        a, b = (P2pNode(i, [ident_a.public_key, ident_b.public_key], overflow="drop",
                        send_queue_size=1000, send_queue_bytes=4 * MIB)
                for i in (ident_a, ident_b))
        await start_mesh([a, b])
        try:
            # No await in between: the writer cannot drain, as with a peer not reading.
            sent = [a.mgr.send(b.key, APP, b"x" * MIB) for _ in range(40)]
            conn = a.mgr._conns[b.key]
            queued = sum(len(p) for p in conn.queue._queue)  # type: ignore[attr-defined]
            assert queued == conn.queued_bytes
            return sent, queued
        finally:
            await close_all([a, b])

    ident_a, ident_b = ed25519_identity(), ed25519_identity()
    sent, queued = asyncio.run(scenario())
    assert sent[:3] == [True, True, True] and sent.count(True) <= 4
    assert queued <= 4 * MIB
