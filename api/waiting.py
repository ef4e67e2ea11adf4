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
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from yilian.api.auth import ApiError
from yilian.api.json_bytes import hex0x
from yilian.api.openapi import ErrorResponse
from yilian.node.admission import Rejected
from yilian.node.node_api import NodeAPI
from yilian.node.tx_index import TxRecord
from yilian.node.tx_outcome import Pending, TxFailed
from yilian.node.user_calls import Admitted, ChainStalled

PER_ACCOUNT = 8  # a user-signed transaction waited for (grants, members)
PER_OPERATOR = 64  # an account serving many users: center staff publishing, a desk reading
PER_CLIENT_IP = 64
TOTAL = 512
COMMIT_TIMEOUT_S = 30.0  # then the call answers "pending" (202); the transaction stays


class WaitBudget:
    """Counts open waiting calls per account, per client IP and in total."""

    def __init__(self, per_account: int = PER_ACCOUNT, per_ip: int = PER_CLIENT_IP,
                 total: int = TOTAL, per_operator: int = PER_OPERATOR) -> None:
        self.per_account = per_account
        self.per_operator = per_operator
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
             extra: dict[str, Any] | None = None, *,
             operator: bool = False) -> Iterator[None]:
        """Hold one waiting slot for the block; ApiError ``too_many_waiting`` (429, this
        caller) or ``waiting_full`` (503, the node) when a bound is hit
        (``extra`` goes into the error: e.g. the hash of a transaction that is kept).
        ``operator``: a center operation of the key service, which checks its caller
        before anything is submitted: a publish or remove (only the node's own center's
        staff) or a key request (only an active member, under a grant). One such account
        serves many users at once (a center's platform, a bank's guarantee desk), so it
        may have ``per_operator`` such calls waiting instead of ``per_account``. The node's
        ``total`` still bounds them all: one account holds at most an eighth of it."""
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
            per_account = self.per_operator if operator else self.per_account
            for kind, who in keys:
                limit = per_account if kind == "account" else self.per_ip
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
             by_address: bool = True,
             operator: bool = False) -> contextlib.AbstractContextManager[None]:
        """``by_address=False`` for a request another node forwarded: its address is that
        node's, shared by all the callers it relays (they are counted by account)."""
        return self.budget.slot(account, self.client_ip if by_address else None, extra,
                                operator=operator)


def wait_slots(request: Request) -> WaitSlots:
    budget: WaitBudget = request.app.state.waits  # one per app (create_app)
    return WaitSlots(budget, None if request.client is None else request.client.host)


WaitsDep = Annotated[WaitSlots, Depends(wait_slots)]


def pending_response(pending: Pending) -> JSONResponse:
    """The HTTP 202 answer for a transaction accepted but not committed yet."""
    return JSONResponse({"status": pending.status, "tx_hash": hex0x(pending.tx_hash),
                         "reason": pending.reason, "message": pending.message},
                        status_code=202)




async def commit_domain_tx(node: NodeAPI, raw_hex: str, contract: bytes, slots: WaitSlots,
                           functions: frozenset[str] | None = None,
                           expect: dict[str, Any] | None = None) -> TxRecord | Pending:
    """Admit a user-signed call of ``contract`` (one of ``functions`` if given) and wait,
    holding no thread, until its block is final; return the committed record.

    The node does the work (:mod:`yilian.node.user_calls`); this adds the HTTP answers and
    the caller's wait slot. ``expect`` names arguments the call must have (e.g. the grant
    id in the URL). Answered at once, without waiting: a transaction already committed
    (its result, or 409 with the revert reason) or pending (Pending, 202), so resending the
    same signed transaction is idempotent and is how a client polls it; one that cannot
    execute yet (a nonce gap: Pending ``queued``); and a stalled chain (ApiError 503
    ``no_quorum`` / ``no_commit``: the transaction is kept and commits when the chain
    recovers). After COMMIT_TIMEOUT_S the answer is Pending ``commit_timeout``: still
    pending, not failed. ApiError otherwise: ``bad_call`` or the node's admission reason
    (e.g. ``role``, ``mempool_full``; statuses in yilian.api.reasons);
    ``too_many_waiting``/``waiting_full`` when too many calls wait (the transaction is kept,
    with its hash: the bound is on waiting, admission has the mempool's own bounds)."""
    raw = bytes.fromhex(raw_hex[2:])
    try:
        state = await anyio.to_thread.run_sync(node.user_calls.submit, raw, contract,
                                               functions, expect)
    except Rejected as exc:
        raise ApiError(exc.reason, str(exc)) from None
    except ChainStalled as exc:
        raise ApiError(exc.reason, str(exc),
                       {**_kept(exc.tx_hash or b""), "chain": exc.health.json()}) from None
    except TxFailed as exc:  # committed before, and reverted
        raise ApiError(exc.reason, str(exc),
                       {"tx_hash": hex0x(exc.tx_hash or b"")}) from None
    if not isinstance(state, Admitted):
        return state
    with slots.slot(state.sender, _kept(state.tx_hash)):
        try:
            return await node.user_calls.wait(state, COMMIT_TIMEOUT_S)
        except TxFailed as exc:
            raise ApiError(exc.reason, str(exc),
                           {"tx_hash": hex0x(state.tx_hash)}) from None


def _kept(tx_hash: bytes) -> dict[str, Any]:
    """What a refusal says of a transaction the node keeps (it commits later)."""
    return {"status": "pending", "tx_hash": hex0x(tx_hash)}


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
