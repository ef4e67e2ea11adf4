"""How many calls may wait for a commit at once: per caller and in total.

A call that waits for its transaction to commit (``POST /v1/grants``, ``/v1/members``,
publishing, removing, a key request) holds no thread while it waits
(:mod:`yilian.node.commit_waiters`), but it still holds an HTTP connection, a coroutine
and a future. So each caller, named by its account (the signer of the request or of the
transaction) and by its client IP, may keep only a few such calls open, and the node only
a bounded number in all. Past a bound the call is refused at once: 429
``too_many_waiting`` (this caller) or 503 ``waiting_full`` (the node), with a message
saying what to do. A user-signed transaction is admitted before its wait is counted
(admission has the mempool's own bounds), so the refusal names it as kept and pending; a
center operation (publish, remove, key request) takes its slot first and submits nothing
when refused.

Calls that need no wait never take a slot: a transaction already committed or pending
(same hash) is answered with its status at once, and one that cannot execute yet (a
nonce gap) is answered as queued.

Limits (see docs/records.md): an SDK caller waits for one call at a time, a center's
platform behind one IP for a few dozen users at once; 512 in all is far above what a
node's block rate can serve in one commit timeout (a block every ~1 s, each answering
many waits), and far below the connection limits of the server.

Known limit: the client IP is the TCP peer's; behind a reverse proxy all callers share
the proxy's address (give the proxy its own per-client limits).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from eth.abc import SignedTransactionAPI
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from yilian.api.auth import ApiError
from yilian.api.openapi import ErrorResponse
from yilian.contracts.abi import AbiError
from yilian.node.center_account import TxFailed, final_record, wait_committed
from yilian.node.chain import TxRecord
from yilian.node.mempool import Rejected, decode_transaction
from yilian.node.service import Node

PER_ACCOUNT = 8
PER_CLIENT_IP = 64
TOTAL = 512
COMMIT_TIMEOUT_S = 30.0  # then the call answers "pending" (202); the transaction stays


class WaitBudget:
    """Counts open waiting calls per account, per client IP and in total."""

    def __init__(self, per_account: int = PER_ACCOUNT, per_ip: int = PER_CLIENT_IP,
                 total: int = TOTAL) -> None:
        self.per_account = per_account
        self.per_ip = per_ip
        self.total = total
        self._lock = threading.Lock()
        self._open: Counter[tuple[str, str]] = Counter()
        self._all = 0

    @property
    def open(self) -> int:
        return self._all

    @contextlib.contextmanager
    def slot(self, account: bytes | None, client_ip: str | None,
             extra: dict[str, Any] | None = None) -> Iterator[None]:
        """Hold one waiting slot for the block; ApiError ``too_many_waiting`` (429, this
        caller) or ``waiting_full`` (503, the node) when a bound is hit
        (``extra`` goes into the error: e.g. the hash of a transaction that is kept)."""
        keys = []
        if account is not None:
            keys.append(("account", "0x" + account.hex()))
        if client_ip is not None:
            keys.append(("ip", client_ip))
        with self._lock:
            if self._all >= self.total:
                raise ApiError("waiting_full",
                               f"this node already has {self.total} calls waiting for "
                               "transactions to commit; retry in a few seconds, or send the "
                               "transaction with eth_sendRawTransaction and poll its receipt",
                               {"limit": self.total, **(extra or {})})
            for kind, who in keys:
                limit = self.per_account if kind == "account" else self.per_ip
                if self._open[(kind, who)] >= limit:
                    raise ApiError("too_many_waiting",
                                   f"{who} already has {limit} calls waiting for their "
                                   "transactions to commit (the most one "
                                   f"{'account' if kind == 'account' else 'client address'} "
                                   "may have); wait for one to finish, or poll the pending "
                                   "ones by resending the same signed transaction",
                                   {"limit": limit, **(extra or {})})
            self._all += 1
            for key in keys:
                self._open[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._all -= 1
                for key in keys:
                    self._open[key] -= 1
                    if not self._open[key]:
                        del self._open[key]


@dataclass(frozen=True)
class WaitSlots:
    """The node's wait budget and this request's client address."""

    budget: WaitBudget
    client_ip: str | None

    def slot(self, account: bytes | None, extra: dict[str, Any] | None = None, *,
             by_address: bool = True) -> contextlib.AbstractContextManager[None]:
        """``by_address=False`` for a request another node forwarded: its address is that
        node's, shared by all the callers it relays (they are counted by account)."""
        return self.budget.slot(account, self.client_ip if by_address else None, extra)


def wait_slots(request: Request) -> WaitSlots:
    budget: WaitBudget = request.app.state.waits  # one per app (create_app)
    return WaitSlots(budget, None if request.client is None else request.client.host)


WaitsDep = Annotated[WaitSlots, Depends(wait_slots)]


@dataclass(frozen=True)
class Pending:
    """A transaction accepted but not (yet) committed: answered with HTTP 202."""

    tx_hash: bytes
    status: str  # "pending": will execute; "queued": waits for an earlier nonce
    reason: str  # why the call did not wait for it: known, nonce_gap, commit_timeout
    message: str

    def response(self) -> JSONResponse:
        return JSONResponse(self.json(), status_code=202)

    def json(self) -> dict[str, Any]:
        return {"status": self.status, "tx_hash": "0x" + self.tx_hash.hex(),
                "reason": self.reason, "message": self.message}


def _checked_call(node: Node, raw: bytes, contract: bytes, functions: frozenset[str] | None,
                  expect: dict[str, Any] | None) -> SignedTransactionAPI:
    """The decoded transaction if it is a call of ``contract`` as the route requires."""
    abi = node.domain.abi_at(contract)
    try:
        tx = decode_transaction(raw, chain_id=node.genesis.chain_id,
                                max_bytes=node.config.mempool.max_tx_bytes)
        if bytes(tx.to) != contract:
            raise ApiError("bad_call", f"the transaction is not addressed to {abi.name}")
        name, args = abi.decode_input(bytes(tx.data))
    except Rejected as exc:
        raise ApiError(exc.reason, str(exc)) from None
    except AbiError as exc:
        raise ApiError("bad_call", str(exc)) from None
    if functions is not None and name not in functions:
        raise ApiError("bad_call", f"expected a call of {abi.name}."
                       f"{' or '.join(sorted(functions))}, got {name}")
    for key, value in (expect or {}).items():
        if args.get(key) != value:
            raise ApiError("bad_call", f"the transaction's {key} is "
                           f"{args.get(key)!r}, but the request names {value!r}")
    return tx


def _final(node: Node, record: TxRecord) -> TxRecord:
    try:
        return final_record(node.ledger, record)
    except TxFailed as exc:
        raise ApiError(exc.reason, str(exc),
                       {"tx_hash": "0x" + bytes(record.tx.hash).hex()}) from None


def _status(node: Node, tx: SignedTransactionAPI, reason: str) -> TxRecord | Pending | None:
    """What the node knows of ``tx``: its committed record (ApiError 409 if it reverted),
    Pending if it is in the mempool, None if neither."""
    tx_hash = bytes(tx.hash)
    record = node.core.tx_record(tx_hash)
    if record is not None:
        return _final(node, record)
    if tx_hash not in node.mempool:
        return None
    next_nonce = node.mempool.pending_nonce(bytes(tx.sender))
    if tx.nonce > next_nonce:
        return Pending(tx_hash, "queued", "nonce_gap",
                       f"transaction 0x{tx_hash.hex()} is kept but cannot execute before its "
                       f"sender's nonce {next_nonce} (it has nonce {tx.nonce}); send the "
                       "missing transactions first. Resend this one to see its status")
    return Pending(tx_hash, "pending", reason,
                   f"transaction 0x{tx_hash.hex()} is pending; resend the same signed "
                   "transaction to get its result once it commits")


async def commit_domain_tx(node: Node, raw_hex: str, contract: bytes, slots: WaitSlots,
                           functions: frozenset[str] | None = None,
                           expect: dict[str, Any] | None = None) -> TxRecord | Pending:
    """Admit a user-signed call of ``contract`` (one of ``functions`` if given) and wait,
    holding no thread, until its block is final; return the committed record.

    ``expect`` names arguments the call must have (e.g. the grant id in the URL).
    Answered at once, without waiting: a transaction already committed (its result, or
    409 with the revert reason) or pending (Pending, 202), so resending the same signed
    transaction is idempotent and is how a client polls it; one that cannot execute yet
    (a nonce gap: Pending ``queued``); and a stalled chain (ApiError 503 ``no_quorum`` /
    ``no_commit``: the transaction is kept and commits when the chain recovers). After
    COMMIT_TIMEOUT_S the answer is Pending ``commit_timeout``: still pending, not failed.
    ApiError otherwise: the node's admission reason (e.g. ``role``, ``mempool_full``);
    ``too_many_waiting``/``waiting_full`` when too many calls wait (the transaction is kept,
    with its hash: the bound is on waiting, admission has the mempool's own bounds)."""
    raw = bytes.fromhex(raw_hex[2:])
    tx = await anyio.to_thread.run_sync(_checked_call, node, raw, contract, functions, expect)
    tx_hash = bytes(tx.hash)
    known = await anyio.to_thread.run_sync(_status, node, tx, "known")
    if known is not None:
        return known
    try:
        await anyio.to_thread.run_sync(node.submit, raw)
    except Rejected as exc:
        if exc.reason != "known":  # "known": a concurrent copy of this call admitted it
            raise ApiError(exc.reason, str(exc)) from None
    state = await anyio.to_thread.run_sync(_status, node, tx, "known")
    if state is None:  # admitted, then replaced or dropped by a block build
        raise ApiError("dropped", f"transaction 0x{tx_hash.hex()} is no longer pending: "
                       "another transaction with the same sender and nonce replaced it, or "
                       "it cannot execute and was dropped (see the node's log)")
    if not (isinstance(state, Pending) and state.status == "pending"):
        return state  # committed meanwhile, or queued behind a nonce gap
    kept = {"status": "pending", "tx_hash": "0x" + tx_hash.hex()}
    health = await anyio.to_thread.run_sync(node.liveness.check)
    if health.stalled:
        problem = health.problems[0]
        raise ApiError(problem.reason,
                       f"the chain is stalled: {problem.message}. Transaction "
                       f"0x{tx_hash.hex()} is kept and commits when the chain recovers; "
                       "resend the same signed transaction to see its status (never sign a "
                       "new one for the same change)", {**kept, "chain": health.json()})
    with slots.slot(bytes(tx.sender), kept):
        try:
            return await wait_committed(node.ledger, tx_hash, COMMIT_TIMEOUT_S)
        except TxFailed as exc:
            if exc.reason != "commit_timeout":
                raise ApiError(exc.reason, str(exc),
                               {"tx_hash": "0x" + tx_hash.hex()}) from None
            return Pending(tx_hash, "pending", "commit_timeout", str(exc))


class PendingPublic(BaseModel):
    """A transaction accepted but not committed yet (HTTP 202)."""

    status: str = Field(description="`pending` (will execute) or `queued` (a nonce gap)")
    tx_hash: str = Field(description="0x hash of the kept transaction; resend it to poll")
    reason: str = Field(description="why the call did not wait: known, nonce_gap, "
                        "commit_timeout")
    message: str


PENDING_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": PendingPublic,
          "description": "accepted, not committed yet: `status` is `pending` or `queued` (a "
          "nonce gap), `tx_hash` names it; resend the same signed transaction to poll"},
    429: {"model": ErrorResponse,
          "description": "this caller already has too many calls waiting (`tx_hash`: the "
          "transaction is kept)"},
    503: {"model": ErrorResponse,
          "description": "`no_quorum`/`no_commit`: the chain is stalled (the transaction is "
          "kept, see `tx_hash`); `waiting_full`: too many calls wait on this node; "
          "`mempool_full`/`sender_limit`: retry after a few blocks"},
}
