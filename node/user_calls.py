"""A user-signed call of a domain contract, submitted for a caller that waits for its block.

The REST writes (``POST /v1/grants``, ``/v1/members`` ...) take a transaction the caller
signed, not the caller's key: the node checks that it is the call the route stands for,
submits it through the ledger's one admission path and waits, holding no thread, until
its block is final. Two steps, so that the API can decide between them whether this
caller may wait at all (its wait slots, :mod:`yilian.api.waiting`):

1. :meth:`UserCalls.submit` (blocking: run it in a worker thread) decodes the transaction
   once, checks it is a call of the expected contract (one of the expected functions, with
   the expected arguments), and answers at once where there is nothing to wait for: a
   transaction already committed (its record, or :class:`TxFailed` ``reverted``), one
   already pending (:class:`Pending` ``known``), one that cannot execute yet (Pending
   ``queued``: a nonce gap). Otherwise it submits it; if the chain is stalled it raises
   :class:`ChainStalled` (the transaction is kept and commits when the chain recovers);
   else it returns :class:`Admitted`.
2. :meth:`UserCalls.wait` waits for an admitted transaction: its final record,
   TxFailed ``reverted``, or Pending ``commit_timeout`` (still pending, not failed).

Invariants:

* Every refusal is a ``Rejected`` with a stable reason tag: ``bad_call`` (not the call the
  route stands for), a decoding or admission reason (e.g. ``role``), or ``dropped``
  (admitted, then replaced or dropped by a block build).
* Submitting the same signed bytes again is idempotent and is how a client polls them.
* The transaction is decoded and its sender recovered once; admission takes it decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth.abc import SignedTransactionAPI

from yilian.contracts.abi import AbiError
from yilian.node.admission import Rejected
from yilian.node.interfaces import ChainHealth, DomainReader, HealthCheck, LedgerAPI
from yilian.node.tx_index import TxRecord
from yilian.node.tx_outcome import Pending, TxFailed, final_record, wait_committed


@dataclass(frozen=True)
class Admitted:
    """Admitted by this call and pending: wait for it with :meth:`UserCalls.wait`."""

    tx_hash: bytes
    sender: bytes


class ChainStalled(TxFailed):
    """Admitted, but the chain is stalled (``no_quorum``/``no_commit``): the transaction is
    kept and commits when the chain recovers; waiting for it now would only time out."""

    def __init__(self, reason: str, message: str, tx_hash: bytes, health: ChainHealth) -> None:
        super().__init__(reason, message, tx_hash)
        self.health = health


class UserCalls:
    def __init__(self, ledger: LedgerAPI, domain: DomainReader, liveness: HealthCheck) -> None:
        self.ledger = ledger
        self.domain = domain
        self.liveness = liveness

    def submit(self, raw: bytes, contract: bytes, functions: frozenset[str] | None = None,
               expect: Mapping[str, Any] | None = None) -> TxRecord | Pending | Admitted:
        """Check ``raw`` is a call of ``contract`` (one of ``functions`` if given, with the
        arguments in ``expect``) and submit it unless it is known; see the module's step 1.
        Raises Rejected, TxFailed ``reverted`` or ChainStalled."""
        tx = self._checked_call(raw, contract, functions, expect)
        tx_hash = bytes(tx.hash)
        known = self._status(tx)
        if known is not None:
            return known
        try:
            self.ledger.submit(raw, decoded=tx)
        except Rejected as exc:
            if exc.reason != "known":  # "known": a concurrent copy of this call admitted it
                raise
        state = self._status(tx)
        if state is None:  # admitted, then replaced or dropped by a block build
            raise Rejected("dropped", f"transaction 0x{tx_hash.hex()} is no longer pending: "
                           "another transaction with the same sender and nonce replaced it, "
                           "or it cannot execute and was dropped (see the node's log)")
        if not (isinstance(state, Pending) and state.status == "pending"):
            return state  # committed meanwhile, or queued behind a nonce gap
        health = self.liveness.check()
        if health.stalled:
            problem = health.problems[0]
            raise ChainStalled(problem.reason,
                               f"the chain is stalled: {problem.message}. Transaction "
                               f"0x{tx_hash.hex()} is kept and commits when the chain "
                               "recovers; resend the same signed transaction to see its "
                               "status (never sign a new one for the same change)",
                               tx_hash, health)
        return Admitted(tx_hash, bytes(tx.sender))

    async def wait(self, admitted: Admitted, timeout: float) -> TxRecord | Pending:
        """The final record of ``admitted`` (no thread held while it waits), Pending
        ``commit_timeout`` after ``timeout`` seconds, or TxFailed ``reverted``."""
        try:
            return await wait_committed(self.ledger, admitted.tx_hash, timeout)
        except TxFailed as exc:
            if exc.reason != "commit_timeout":
                raise
            return Pending(admitted.tx_hash, "pending", "commit_timeout", str(exc))

    def _checked_call(self, raw: bytes, contract: bytes, functions: frozenset[str] | None,
                      expect: Mapping[str, Any] | None) -> SignedTransactionAPI:
        """The decoded transaction if it is a call of ``contract`` as the route requires."""
        abi = self.domain.abi_at(contract)
        tx = self.ledger.decode(raw)
        if bytes(tx.to) != contract:
            raise Rejected("bad_call", f"the transaction is not addressed to {abi.name}")
        try:
            name, args = abi.decode_input(bytes(tx.data))
        except AbiError as exc:
            raise Rejected("bad_call", str(exc)) from None
        if functions is not None and name not in functions:
            raise Rejected("bad_call", f"expected a call of {abi.name}."
                           f"{' or '.join(sorted(functions))}, got {name}")
        for key, value in (expect or {}).items():
            if args.get(key) != value:
                raise Rejected("bad_call", f"the transaction's {key} is "
                               f"{args.get(key)!r}, but the request names {value!r}")
        return tx

    def _status(self, tx: SignedTransactionAPI) -> TxRecord | Pending | None:
        """What the node knows of ``tx``: its committed record (TxFailed if it reverted),
        Pending if it is in the mempool, None if neither."""
        tx_hash = bytes(tx.hash)
        record = self.ledger.core.tx_record(tx_hash)
        if record is not None:
            return final_record(self.ledger, record)
        if tx_hash not in self.ledger.mempool:
            return None
        next_nonce = self.ledger.mempool.pending_nonce(bytes(tx.sender))
        if tx.nonce > next_nonce:
            return Pending(tx_hash, "queued", "nonce_gap",
                           f"transaction 0x{tx_hash.hex()} is kept but cannot execute before "
                           f"its sender's nonce {next_nonce} (it has nonce {tx.nonce}); send "
                           "the missing transactions first. Resend this one to see its status")
        return Pending(tx_hash, "pending", "known",
                       f"transaction 0x{tx_hash.hex()} is pending; resend the same signed "
                       "transaction to get its result once it commits")
