"""The single-validator block producer: without consensus the node proposes, executes and
commits its own blocks, in one thread, through the ledger
(:class:`~yilian.node.interfaces.LedgerAPI`).

Invariants:

* No empty blocks while idle, except one per ``heartbeat_ms`` when that is set.
* Blocks start every ``block_interval_ms`` at most; a block that took longer to build is
  followed at once by the next one instead of an idle pause.
* One bad block never kills the producer: the error is kept (``last_block_error``) and
  production goes on after an interval.
"""

from __future__ import annotations

import logging
import threading
import time

from eth.abc import SignedTransactionAPI

from yilian.node.genesis import ChainParams
from yilian.node.interfaces import CommittedBlock, LedgerAPI

log = logging.getLogger("yilian.node")


def produce(ledger: LedgerAPI, txs: list[SignedTransactionAPI], *, allow_empty: bool = False
            ) -> CommittedBlock | None:
    """Build, commit and announce one block from ``txs`` (none if empty, unless allowed)."""
    built = ledger.build(txs)
    if not built.block.transactions and not allow_empty:
        built.overlay.discard()
        return None
    return ledger.commit_block(built)


class BlockProducer:
    def __init__(self, ledger: LedgerAPI, params: ChainParams) -> None:
        self.ledger = ledger
        self.params = params
        self.last_block_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start producing (again, after :meth:`stop`)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="block-producer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.ledger.mempool.has_ready.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        params = self.params
        mempool = self.ledger.mempool
        interval = params.block_interval_ms / 1000
        heartbeat = params.heartbeat_ms / 1000
        last = time.monotonic()
        while not self._stop.is_set():
            wait = heartbeat - (time.monotonic() - last) if heartbeat else 1.0
            mempool.has_ready.wait(timeout=max(wait, 0.0))
            if self._stop.is_set():
                break
            pause = last + interval - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                break
            heartbeat_due = bool(heartbeat) and time.monotonic() - last >= heartbeat
            txs = mempool.select(params.max_tx_per_block)
            if not txs and not heartbeat_due:
                continue
            last = time.monotonic()
            try:
                produce(self.ledger, txs, allow_empty=heartbeat_due)
            except Exception as exc:  # never let one bad block kill the producer
                self.last_block_error = repr(exc)
                log.exception("block production failed")
                self._stop.wait(interval)
