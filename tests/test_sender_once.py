"""A replica re-executing a proposed block does not recover again the senders its mempool
recovered on admission (same hash, same signed bytes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import eth.vm.forks.berlin.transactions as berlin_txs
import eth.vm.forks.london.transactions as london_txs
import pytest
from helpers import KEYS, make_node, sign_transfer

from yilian.node import wire
from yilian.node.chain import BlockEnv
from yilian.node.height_memory import HeightMemory


@contextmanager
def counting_recoveries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    count = [0]
    for module in (london_txs, berlin_txs):
        real = module.extract_transaction_sender

        def counted(tx: Any, _real: Any = real) -> Any:
            count[0] += 1
            return _real(tx)

        monkeypatch.setattr(module, "extract_transaction_sender", counted)
    yield count


@pytest.mark.parametrize("use_mempool", [False, True])
def test_import_reuses_the_mempools_senders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            use_mempool: bool) -> None:
    node = make_node(tmp_path)
    try:
        for n in range(5):
            node.submit(sign_transfer(KEYS[0], n))
            node.submit(sign_transfer(KEYS[1], n, tx_type=1))
        txs = node.mempool.select(100)
        head = node.core.head()
        built = node.core.build(txs, BlockEnv(head.timestamp + 1, node.proposer))
        built.overlay.discard()
        # As a replica receives it: decoded from the wire into fresh objects.
        fresh = wire.decode_block(wire.encode_block(built.block))
        memory = HeightMemory(node.core, known=node.mempool.get if use_mempool else None)
        with counting_recoveries(monkeypatch) as count:
            assert memory.validate(fresh)
        assert count[0] == 0 if use_mempool else count[0] >= 10, count
        assert memory.candidates[bytes(fresh.hash)].block.header.state_root == (
            built.block.header.state_root)
    finally:
        node.stop()
