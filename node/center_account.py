"""The center's own chain account, held by its node: signs and submits the node's domain
transactions (published records, access receipts) and waits for them to commit.

Invariants: nonces are assigned under one lock from the mempool's pending nonce, so
concurrent requests never collide; a transaction is reported successful only after its
block is committed (final under BFT) with status 1; a revert is reported with the
contract's reason string. Waiting holds no thread (``LedgerAPI.wait_for_commit``); the short
blocking steps (signing, admission, revert replay) run in the loop's executor. When the
chain is stalled (``yilian.node.liveness``) nothing is submitted: the call fails at once
with ``no_quorum`` or ``no_commit`` instead of adding a transaction that cannot commit.
"""

from __future__ import annotations

import asyncio
import threading

from eth_account import Account
from eth_utils import to_checksum_address

from yilian.contracts.abi import revert_reason
from yilian.contracts.addresses import DOMAIN_TX_GAS
from yilian.node.chain import TxRecord
from yilian.node.interfaces import HealthCheck, LedgerAPI
from yilian.node.mempool import Rejected


class TxFailed(RuntimeError):
    """A transaction of the center account reverted, was refused or did not commit in time."""

    def __init__(self, reason: str, message: str, tx_hash: bytes | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.tx_hash = tx_hash


class CenterAccount:
    def __init__(self, ledger: LedgerAPI, liveness: HealthCheck, private_key: bytes) -> None:
        self.ledger = ledger
        self.liveness = liveness
        self._account = Account.from_key(private_key)
        self.address = bytes.fromhex(self._account.address[2:])
        self._lock = threading.Lock()

    @property
    def checksum(self) -> str:
        return to_checksum_address(self.address)

    def submit(self, to: bytes, data: bytes) -> bytes:
        """Sign and admit one transaction; return its hash (Rejected propagates)."""
        with self._lock:
            nonce = self.ledger.mempool.pending_nonce(self.address)
            signed = self._account.sign_transaction({
                "type": 2, "chainId": self.ledger.genesis.chain_id, "nonce": nonce,
                "to": to_checksum_address(to), "value": 0, "data": data, "gas": DOMAIN_TX_GAS,
                "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
            })
            return self.ledger.submit(bytes(signed.raw_transaction))

    async def send(self, to: bytes, data: bytes, timeout: float = 30.0) -> TxRecord:
        """Submit and wait until final. TxFailed: ``reverted`` (with the contract's reason),
        ``no_quorum``/``no_commit`` (chain stalled; nothing was submitted),
        ``commit_timeout`` (submitted and still pending), or the node's admission reason
        (e.g. ``mempool_full``)."""
        health = await asyncio.to_thread(self.liveness.check)
        if health.stalled:
            problem = health.problems[0]
            raise TxFailed(problem.reason, f"the chain is stalled ({problem.message}); "
                           "nothing was submitted: retry when it is back")
        try:
            tx_hash = await asyncio.to_thread(self.submit, to, data)
        except Rejected as exc:
            raise TxFailed(exc.reason, f"the node refused the center's transaction: {exc}"
                           ) from None
        return await wait_committed(self.ledger, tx_hash, timeout)


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
        call = ledger.core.call_tx(tx.sender, tx.to, tx.data, header, tx.gas, value=tx.value)
        computation = ledger.core.call(call, header, DOMAIN_TX_GAS)
    except Exception:
        return "transaction reverted"
    return revert_reason(computation.output) or "transaction reverted"
