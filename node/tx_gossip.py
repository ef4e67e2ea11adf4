"""Transaction gossip between nodes: batched TXS messages, admitted like any submission.

Invariants:

* A TXS message stays within ``wire.MAX_TXS_PER_MESSAGE`` transactions and
  ``TX_BATCH_BYTES`` (well inside a frame); a transaction larger than that goes alone.
* A locally admitted transaction is queued once and sent within ``TX_FLUSH_DELAY`` to the
  peers connected then (a peer that connects later gets the pending ones on connect).
* A received transaction goes through the node's normal admission (``submit`` with
  ``gossip=False``, so it is not echoed); a malformed batch is dropped and logged.
* Received batches are admitted by :class:`RemoteTxIntake`'s own thread, in arrival order,
  never on the p2p event loop (votes and proposals must not wait behind admission). Its
  queue holds at most ``INTAKE_BATCHES`` batches and ``INTAKE_BYTES`` of transactions
  (a TXS frame may be 64 MiB): past either a batch is dropped and counted
  (gossip is best effort; peers send their pending transactions again on reconnect, and
  the sender's own node proposes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from yilian.node import wire
from yilian.node.mempool import Rejected

log = logging.getLogger("yilian.consensus")

TX_FLUSH_DELAY = 0.01
TX_BATCH_BYTES = 8 * 1024 * 1024  # one TXS message, well inside a frame
INTAKE_BATCHES = 64  # received TXS messages waiting for admission
INTAKE_BYTES = 64 * 1024 * 1024  # and their transactions' bytes


def tx_batches(raws: list[bytes]) -> list[list[bytes]]:
    """Split raw transactions into TXS messages within the count and byte budgets."""
    out: list[list[bytes]] = []
    batch: list[bytes] = []
    size = 0
    for raw in raws:
        if batch and (len(batch) >= wire.MAX_TXS_PER_MESSAGE
                      or size + len(raw) > TX_BATCH_BYTES):
            out.append(batch)
            batch, size = [], 0
        batch.append(raw)
        size += len(raw)
    if batch:
        out.append(batch)
    return out


def admit_remote_txs(body: Any, submit: Callable[..., Any]) -> None:
    """Admit the transactions of a peer's TXS message (rejections are silent)."""
    try:
        raws = wire.decode_txs(body)
    except wire.WireError as exc:
        log.info("dropped a malformed tx batch: %s", exc)
        return
    for raw in raws:
        with contextlib.suppress(Rejected):
            submit(raw, gossip=False)


class RemoteTxIntake:
    """Admits peers' TXS messages on a thread of its own, in arrival order, bounded."""

    def __init__(self, submit: Callable[..., Any], capacity: int = INTAKE_BATCHES,
                 max_bytes: int = INTAKE_BYTES) -> None:
        self._submit = submit
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._max_bytes = max_bytes
        self._bytes = 0  # bytes of the queued batches
        self._lock = threading.Lock()
        self.dropped = 0  # batches dropped because the queue was full

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="tx-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout=timeout)
        if not self._thread.is_alive():  # else a later start would run two consumers
            self._thread = None

    def offer(self, body: Any) -> bool:
        """Queue a received TXS message body (never blocks); False when it was dropped."""
        size = _size(body)
        try:
            with self._lock:
                if self._bytes + size > self._max_bytes:
                    raise queue.Full
                self._queue.put_nowait((body, size))
                self._bytes += size
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("transaction gossip is arriving faster than this node admits it: "
                            "%d batches dropped so far", self.dropped)
            return False
        return True

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            body, size = item
            with self._lock:
                self._bytes -= size
            try:
                admit_remote_txs(body, self._submit)
            except Exception:  # keep admitting; a bug here must not stop gossip
                log.exception("admitting a gossiped batch failed")


def _size(body: Any) -> int:
    """The bytes a received TXS body holds (its transactions; anything else counts 0)."""
    if not isinstance(body, list | tuple):
        return 0
    return sum(len(t) for t in body if isinstance(t, bytes | bytearray))


class TxOutbox:
    """Locally admitted transactions waiting to be broadcast (flushed on the p2p loop)."""

    def __init__(self, broadcast: Callable[[int, Any], None]) -> None:
        self._broadcast = broadcast
        self._outbox: list[bytes] = []
        self._lock = threading.Lock()

    def add(self, raw: bytes, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            first = not self._outbox
            self._outbox.append(raw)
        if first:
            loop.call_soon_threadsafe(loop.call_later, TX_FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        with self._lock:
            batch, self._outbox = self._outbox, []
        for chunk in tx_batches(batch):
            self._broadcast(wire.TXS, chunk)
