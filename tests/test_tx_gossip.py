"""Gossiped transactions are admitted off the p2p loop, in order, with a bounded queue."""

from __future__ import annotations

import threading
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from yilian.node import tx_gossip, wire
from yilian.node.mempool import Rejected
from yilian.node.tx_gossip import RemoteTxIntake, tx_batches


def _wait(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_offer_returns_at_once_and_batches_are_admitted_in_order() -> None:
    gate = threading.Event()
    seen: list[bytes] = []

    def submit(raw: bytes, *, gossip: bool) -> None:
        assert gossip is False  # never echoed back to peers
        gate.wait(5)
        if raw == b"bad":
            raise Rejected("nonce_too_low", "x")
        seen.append(raw)

    intake = RemoteTxIntake(submit, capacity=4)
    intake.start()
    try:
        started = time.monotonic()
        for batch in ([b"a", b"bad", b"b"], [b"c"], [b"d", b"e"]):
            assert intake.offer(batch)
        assert time.monotonic() - started < 0.5  # a blocked admission holds nobody up
        gate.set()
        _wait(lambda: len(seen) == 5)
        assert seen == [b"a", b"b", b"c", b"d", b"e"]
    finally:
        gate.set()
        intake.stop()


def test_a_full_queue_drops_and_counts_and_malformed_batches_are_skipped() -> None:
    gate = threading.Event()
    seen: list[bytes] = []

    def submit(raw: bytes, *, gossip: bool) -> None:
        gate.wait(5)
        seen.append(raw)

    intake = RemoteTxIntake(submit, capacity=2)
    intake.start()
    try:
        assert intake.offer([b"first"])
        _wait(lambda: intake._queue.empty())  # taken by the worker, now blocked in submit
        assert intake.offer(["not bytes", 5])  # malformed: dropped by the worker, logged
        assert intake.offer([b"second"])
        assert not intake.offer([b"third"])  # the queue holds two
        assert intake.dropped == 1
        gate.set()
        _wait(lambda: seen == [b"first", b"second"])
    finally:
        gate.set()
        intake.stop()


@given(st.lists(st.binary(min_size=1, max_size=3000), max_size=60))
def test_tx_batches_keep_order_and_stay_within_bounds(raws: list[bytes]) -> None:
    batches = tx_batches(raws)
    assert [r for b in batches for r in b] == raws
    for b in batches:
        assert len(b) <= wire.MAX_TXS_PER_MESSAGE
        assert len(b) == 1 or sum(map(len, b)) <= tx_gossip.TX_BATCH_BYTES


def test_the_queue_is_bounded_in_bytes_too_and_restarts_run_one_consumer() -> None:
    gate = threading.Event()
    seen: list[bytes] = []

    def submit(raw: bytes, *, gossip: bool) -> None:
        gate.wait(5)
        seen.append(raw)

    intake = RemoteTxIntake(submit, capacity=64, max_bytes=1000)
    intake.start()
    intake.start()  # already running: no second consumer
    try:
        assert intake.offer([b"x" * 10])
        _wait(lambda: intake._queue.empty())
        assert intake.offer([b"a" * 600])
        assert not intake.offer([b"b" * 600])  # 1,200 bytes would be queued
        assert intake.offer([b"c" * 400])
        assert intake.dropped == 1
        gate.set()
        _wait(lambda: len(seen) == 3)
        assert intake._bytes == 0
    finally:
        gate.set()
        intake.stop()
    assert intake._thread is None
    intake.start()  # a stopped intake starts again
    intake.offer([b"again"])
    _wait(lambda: seen[-1:] == [b"again"])
    intake.stop()
