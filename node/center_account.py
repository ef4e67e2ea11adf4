"""The center's own chain account, held by its node: signs and submits the node's domain
transactions (published records, access receipts) and waits for them to commit.

Invariants: nonces are assigned under one lock from the mempool's pending nonce, so
concurrent requests never collide; a transaction is reported successful only after its
block is committed (final under BFT) with status 1; a revert is reported with the
contract's reason string (:mod:`yilian.node.tx_outcome`). Waiting holds no thread
(``LedgerAPI.wait_for_commit``); the short blocking steps (signing, admission, revert
replay) run in the loop's executor. When the chain is stalled (``yilian.node.liveness``)
nothing is submitted: the call fails at once with ``no_quorum`` or ``no_commit`` instead
of adding a transaction that cannot commit.
"""

from __future__ import annotations

import asyncio
import threading

from eth_account import Account
from eth_utils import to_checksum_address

from yilian.contracts.addresses import DOMAIN_TX_GAS
from yilian.node.interfaces import HealthCheck, LedgerAPI
from yilian.node.mempool import Rejected
from yilian.node.tx_index import TxRecord
from yilian.node.tx_outcome import TxFailed, wait_committed


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

    def submit(self, to: bytes, data: bytes, gas: int = DOMAIN_TX_GAS) -> bytes:
        """Sign and admit one transaction with gas limit ``gas``; return its hash (Rejected
        propagates)."""
        with self._lock:
            nonce = self.ledger.mempool.pending_nonce(self.address)
            signed = self._account.sign_transaction({
                "type": 2, "chainId": self.ledger.genesis.chain_id, "nonce": nonce,
                "to": to_checksum_address(to), "value": 0, "data": data, "gas": gas,
                "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
            })
            return self.ledger.submit(bytes(signed.raw_transaction))

    async def send(self, to: bytes, data: bytes, timeout: float = 30.0,
                   gas: int = DOMAIN_TX_GAS) -> TxRecord:
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
            tx_hash = await asyncio.to_thread(self.submit, to, data, gas)
        except Rejected as exc:
            raise TxFailed(exc.reason, f"the node refused the center's transaction: {exc}"
                           ) from None
        return await wait_committed(self.ledger, tx_hash, timeout)
