"""JSON-RPC 2.0 framing shared by ``POST /rpc`` and ``/ws``: parsing, request objects,
ids, batches, and the work budget one HTTP request or WebSocket message may spend.

Invariants:

* Bodies are parsed by :func:`yilian.api.json_guard.loads_strict` (linear-time depth
  check, no NaN/Infinity): any failure is -32700 with ``id: null``.
* An ``id`` is a string, a finite number or null; anything else is -32600 answered with
  ``id: null`` (so no response ever echoes a value that is not JSON).
* A batch holds 1..``max_batch`` requests. All requests of one batch (or the single
  request) share one :class:`WorkBudget`: ``batch_timeout_ms`` of wall time and
  ``batch_gas`` of execution gas; once spent, each remaining request is answered -32005
  naming the limit. ``eth_call``/``eth_estimateGas`` also get at most ``gas_cap`` gas and
  ``call_timeout_ms`` each.
* A handler never lets an exception escape: anything unexpected is -32603 and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yilian.api.json_guard import JsonRejected, loads_strict
from yilian.api.rpc_errors import InternalError, InvalidRequest, LimitExceeded, ParseError, RpcError
from yilian.node.config import RpcLimits
from yilian.node.execution_limits import Deadline

log = logging.getLogger("yilian.rpc")

JsonObj = dict[str, Any]


@dataclass
class WorkBudget:
    """Wall time and execution gas left for one request or batch."""

    limits: RpcLimits
    deadline: float
    gas_left: int

    @classmethod
    def start(cls, limits: RpcLimits) -> WorkBudget:
        return cls(limits, time.monotonic() + limits.batch_timeout_ms / 1000, limits.batch_gas)

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(
                f"the request ran past its time limit of {self.limits.batch_timeout_ms} ms "
                "(rpc.batch_timeout_ms) before this call started; send smaller batches")

    def call_gas(self, requested: int | None) -> int:
        """Gas for one eth_call / eth_estimateGas: the request's, within both caps."""
        if self.gas_left <= 0:
            raise LimitExceeded(
                f"the batch used its gas budget of {self.limits.batch_gas} "
                "(rpc.batch_gas) for eth_call/eth_estimateGas; send the rest separately")
        return min(requested or self.limits.gas_cap, self.limits.gas_cap, self.gas_left)

    def call_deadline(self) -> Deadline:
        """When one execution must stop: its own limit or the batch's, whichever is first."""
        own = Deadline.after(self.limits.call_timeout_ms / 1000)
        if self.deadline < own.at:
            return Deadline(self.deadline, self.limits.batch_timeout_ms / 1000)
        return own

    def spend_gas(self, used: int) -> None:
        self.gas_left -= used


Dispatch = Callable[[str, Any, WorkBudget], Any]


def error_response(req_id: Any, exc: RpcError) -> JsonObj:
    return {"jsonrpc": "2.0", "id": req_id, "error": exc.to_json()}


def parse_body(body: bytes | str) -> tuple[Any, JsonObj | None]:
    """(payload, None), or (None, the -32700 response) when the body is not strict JSON."""
    try:
        return loads_strict(body), None
    except JsonRejected as exc:
        return None, error_response(None, ParseError(f"parse error: {exc.message}"))


def valid_id(req_id: Any) -> bool:
    return req_id is None or (isinstance(req_id, (str, int, float))
                              and not isinstance(req_id, bool))


def check_batch(payload: list[Any], limits: RpcLimits) -> JsonObj | None:
    """The error response for an empty or oversized batch, else None."""
    if not payload:
        return error_response(None, InvalidRequest("invalid request: empty batch"))
    if len(payload) > limits.max_batch:
        return error_response(None, LimitExceeded(
            f"batch of {len(payload)} requests exceeds the limit of {limits.max_batch} "
            "(rpc.max_batch); split it"))
    return None


def handle_payload(payload: Any, limits: RpcLimits, dispatch: Dispatch) -> Any:
    """A parsed body: one request or a batch. Returns the JSON to send, or None."""
    budget = WorkBudget.start(limits)
    if isinstance(payload, list):
        refused = check_batch(payload, limits)
        if refused is not None:
            return refused
        out = [r for r in (handle_one(item, budget, dispatch) for item in payload)
               if r is not None]
        return out or None
    return handle_one(payload, budget, dispatch)


def handle_one(req: Any, budget: WorkBudget, dispatch: Dispatch) -> JsonObj | None:
    if not isinstance(req, dict):
        return error_response(None, InvalidRequest(
            "invalid request: expected a JSON-RPC request object"))
    has_id = "id" in req
    req_id = req.get("id")
    if not valid_id(req_id):
        return error_response(None, InvalidRequest(
            "invalid request: id must be a string, number or null"))
    method = req.get("method")
    if req.get("jsonrpc") != "2.0" or not isinstance(method, str):
        return error_response(req_id, InvalidRequest(
            'invalid request: need {"jsonrpc": "2.0", "method": <string>, ...}'))
    try:
        budget.check_time()
        result = dispatch(method, req.get("params"), budget)
    except RpcError as exc:
        return error_response(req_id, exc) if has_id else None
    except Exception as exc:  # a bug, never a crash
        log.exception("internal error in %s", method[:80])
        if not has_id:
            return None
        return error_response(req_id, InternalError(
            f"internal error while handling {method[:80]}: {type(exc).__name__}"))
    if not has_id:
        return None
    return {"jsonrpc": "2.0", "id": req_id, "result": result}
