"""What became of a submitted transaction: final, failed, or still pending.

Whoever submits a transaction and waits for it (the center account for the node's own
transactions, :mod:`yilian.node.user_calls` for user-signed domain calls) gets one of
three answers from here: the committed :class:`~yilian.node.chain.TxRecord` of a
transaction that succeeded, :class:`TxFailed` (it reverted, with the contract's reason,
or it did not commit in time), or :class:`Pending` (kept in the mempool, not committed
yet: a resend of the same signed bytes polls it).

Invariants:

* A record is final only when its block is committed (final under BFT) and its status is
  1; a reverted one is never reported as a success.
* Waiting holds no thread (``LedgerAPI.wait_for_commit``); the revert-reason replay, a
  short EVM call, runs in a worker thread.
* ``commit_timeout`` means "not yet", never "failed": the transaction stays pending and
  its message says how to poll it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from yilian.contracts.abi import revert_reason
from yilian.node.interfaces import LedgerAPI
from yilian.node.tx_index import TxRecord


@dataclass(frozen=True)
class Pending:
    """A transaction accepted but not (yet) committed."""

    tx_hash: bytes
    status: str  # "pending": will execute; "queued": waits for an earlier nonce
    reason: str  # why the caller was not given its result: known, nonce_gap, commit_timeout
    message: str


class TxFailed(RuntimeError):
    """A transaction reverted, was refused or did not commit in time."""

    def __init__(self, reason: str, message: str, tx_hash: bytes | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.tx_hash = tx_hash


def pending_message(tx_hash: bytes, timeout: float) -> str:
    """What to tell a caller whose transaction did not commit in time."""
    return (f"transaction 0x{tx_hash.hex()} did not commit within {timeout:.0f} s; it has "
            "not failed: it is still pending and commits when the chain catches up. Check "
            "/readyz, and poll eth_getTransactionReceipt or retry the same request (retries "
            "are idempotent) instead of sending a new transaction")


async def wait_committed(ledger: LedgerAPI, tx_hash: bytes, timeout: float) -> TxRecord:
    """The committed record of ``tx_hash`` (waiting up to ``timeout`` s, no thread held);
    TxFailed on revert (with the reason) or ``commit_timeout`` (still pending)."""
    committed = await ledger.wait_for_commit(tx_hash, timeout)
    record = ledger.core.tx_record(tx_hash) if committed else None
    if record is None:
        raise TxFailed("commit_timeout", pending_message(tx_hash, timeout), tx_hash)
    return await asyncio.to_thread(final_record, ledger, record)


def final_record(ledger: LedgerAPI, record: TxRecord) -> TxRecord:
    """``record`` if it succeeded; TxFailed ``reverted`` with the contract's reason."""
    if record.receipt.state_root != b"\x01":  # EIP-658 status lives here
        raise TxFailed("reverted", _revert_reason(ledger, record), bytes(record.tx.hash))
    return record


def _revert_reason(ledger: LedgerAPI, record: TxRecord) -> str:
    """Re-run a reverted transaction on its parent state to recover the revert reason.

    Earlier transactions of the same block are not replayed first, so the reason is the
    one the call gives on the parent state; for the domain contracts' checks that is the
    reason that applied (they depend on state the same block rarely changes)."""
    header = ledger.core.header_by_number(record.block_number - 1)
    if header is None:
        return "transaction reverted"
    tx = record.tx
    try:
        computation = ledger.call_as(tx.sender, tx.to, tx.data, header, tx.gas, value=tx.value)
    except Exception:
        return "transaction reverted"
    return revert_reason(computation.output) or "transaction reverted"
