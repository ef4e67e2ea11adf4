"""The center's own chain account, held by its node: signs and submits the node's domain
transactions (published records, access receipts) and waits for them to commit.

Invariants: nonces are assigned under one lock from the mempool's pending nonce, so
concurrent requests never collide; a transaction is reported successful only after its
block is committed (final under BFT) with status 1; a revert is reported with the
contract's reason string.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_utils import to_checksum_address

from yilian.contracts.abi import revert_reason
from yilian.node.chain import TxRecord
from yilian.node.mempool import Rejected

if TYPE_CHECKING:
    from yilian.node.service import Node

TX_GAS = 2_000_000


class TxFailed(RuntimeError):
    """A transaction of the center account reverted, was refused or did not commit in time."""

    def __init__(self, reason: str, message: str, tx_hash: bytes | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.tx_hash = tx_hash


class CenterAccount:
    def __init__(self, node: Node, private_key: bytes) -> None:
        self.node = node
        self._account = Account.from_key(private_key)
        self.address = bytes.fromhex(self._account.address[2:])
        self._lock = threading.Lock()

    @property
    def checksum(self) -> str:
        return to_checksum_address(self.address)

    def submit(self, to: bytes, data: bytes) -> bytes:
        """Sign and admit one transaction; return its hash (Rejected propagates)."""
        with self._lock:
            nonce = self.node.mempool.pending_nonce(self.address)
            signed = self._account.sign_transaction({
                "type": 2, "chainId": self.node.genesis.chain_id, "nonce": nonce,
                "to": to_checksum_address(to), "value": 0, "data": data, "gas": TX_GAS,
                "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
            })
            return self.node.submit(bytes(signed.raw_transaction))

    def send(self, to: bytes, data: bytes, timeout: float = 30.0) -> TxRecord:
        """Submit and wait until final. TxFailed: ``reverted`` (with the contract's reason),
        ``commit_timeout``, or the node's admission reason (e.g. ``mempool_full``)."""
        try:
            tx_hash = self.submit(to, data)
        except Rejected as exc:
            raise TxFailed(exc.reason, f"the node refused the center's transaction: {exc}"
                           ) from None
        return wait_committed(self.node, tx_hash, timeout)


def wait_committed(node: Node, tx_hash: bytes, timeout: float) -> TxRecord:
    """The committed record of ``tx_hash``; TxFailed on revert (with the reason) or timeout."""
    record = node.core.tx_record(tx_hash) if node.wait_for_commit(tx_hash, timeout) else None
    if record is None:
        raise TxFailed("commit_timeout",
                       f"transaction 0x{tx_hash.hex()} did not commit within "
                       f"{timeout:.0f} s; the chain may be stalled (check /healthz)",
                       tx_hash)
    if record.receipt.state_root != b"\x01":  # EIP-658 status lives here
        raise TxFailed("reverted", _revert_reason(node, record), tx_hash)
    return record


def _revert_reason(node: Node, record: TxRecord) -> str:
    """Re-run a reverted transaction on its parent state to recover the revert reason.

    Earlier transactions of the same block are not replayed first, so the reason is the
    one the call gives on the parent state; for the domain contracts' checks that is the
    reason that applied (they depend on state the same block rarely changes)."""
    header = node.core.header_by_number(record.block_number - 1)
    if header is None:
        return "transaction reverted"
    tx = record.tx
    try:
        nonce = node.core.reader().get_vm(header).state.get_nonce(tx.sender)
        unsigned = node.core.vm_class.create_unsigned_transaction(
            nonce=nonce, gas_price=0, gas=tx.gas, to=tx.to, value=tx.value, data=tx.data)
        spoof = SpoofTransaction(unsigned, from_=tx.sender)
        computation = node.core.call(spoof, header, TX_GAS)  # type: ignore[arg-type]
    except Exception:
        return "transaction reverted"
    return revert_reason(computation.output) or "transaction reverted"
