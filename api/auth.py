"""Authentication of ``/v1`` requests and the REST error shape.

A signed request (see :mod:`yilian.protocol.signed_request`) is accepted once: the node's
replay window (:mod:`yilian.node.request_replay`) records its (account, nonce) before the
request runs and keeps it until its expiry has passed, so a replay is refused even after
a restart. It is accepted only by the node it names (its audience,
:func:`yilian.node.audience.request_audience`), so it cannot be replayed at another node
either; the one exception is the key request, which names the record's custodian and is
checked by its route (forwarded unchanged by other nodes, served only by the custodian).
The caller must be an account of an active member; its member id and role are read from
the Members contract at the committed head.

Every error of the REST API is ``{"error": {"reason": tag, "message": sentence, ...}}``
with the HTTP status :mod:`yilian.api.reasons` gives the tag; ``reason`` tags are stable
for programs, messages say what to do. Errors raised by the framework (validation,
routing) are mapped to the same shape in :mod:`yilian.api.errors`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from yilian.api.deps import get_node
from yilian.api.reasons import http_status
from yilian.contracts.addresses import ROLE_NAMES
from yilian.node.audience import request_audience
from yilian.node.node_api import NodeAPI
from yilian.protocol.signed_request import (
    ACCOUNT_HEADER,
    AUDIENCE_HEADER,
    EXPIRES_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    RequestAuthError,
    check_audience,
    recover_signer,
)

AUTH_HEADERS = (ACCOUNT_HEADER, AUDIENCE_HEADER, NONCE_HEADER, EXPIRES_HEADER,
                SIGNATURE_HEADER)


class ApiError(Exception):
    """A refusal of the API: ``reason`` is a tag of :mod:`yilian.api.reasons`, whose table
    gives the HTTP status; ``extra`` adds fields to the error body."""

    def __init__(self, reason: str, message: str, extra: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = http_status(reason)
        self.reason = reason
        self.message = message
        self.extra = extra or {}


def error_body(reason: str, message: str, extra: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    return {"error": {"reason": reason, "message": message, **(extra or {})}}


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: renders any str, lone surrogates too
    (an error message may echo the caller's input)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


async def api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return AsciiJSONResponse(error_body(exc.reason, exc.message, exc.extra),
                             status_code=exc.status)


@dataclass(frozen=True)
class Caller:
    """An authenticated member account and the request it signed."""

    account: str
    address: bytes
    audience: str
    nonce: str
    member_id: bytes
    role: int
    body: bytes
    headers: dict[str, str]

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, "none")


async def signed_caller(request: Request) -> Caller:
    """The member account that signed this request for this node; ApiError 401/403
    otherwise.

    Only the body is read on the event loop; the signature recovery and the registry
    lookups (EVM calls) run in the thread pool so they never stall other connections.
    """
    return await _signed(request, own_audience=True)


async def signed_caller_for_route(request: Request) -> Caller:
    """As :func:`signed_caller`, but the route checks the audience (with
    :func:`audience_error`): for the key request, which names the record's custodian."""
    return await _signed(request, own_audience=False)


def audience_error(caller: Caller, expected: str) -> ApiError | None:
    """The 401 for a request not signed for ``expected``, or None."""
    try:
        check_audience(caller.audience, expected)
    except RequestAuthError as exc:
        return ApiError(exc.reason, str(exc))
    return None


async def _signed(request: Request, *, own_audience: bool) -> Caller:
    node = get_node(request)
    if not node.domain.enabled:
        raise ApiError("no_domain", "this network's genesis has no domain contracts")
    body = await request.body()
    headers = {h: request.headers.get(h, "") for h in AUTH_HEADERS}
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await run_in_threadpool(_authenticate, request, node, headers, path, body,
                                   own_audience)


def _authenticate(request: Request, node: NodeAPI, headers: dict[str, str], path: str,
                  body: bytes, own_audience: bool) -> Caller:
    try:
        signed = recover_signer(headers, chain_id=node.genesis.chain_id,
                                method=request.method, path=path, body=body)
        if own_audience:
            check_audience(signed.audience, request_audience(node))
    except RequestAuthError as exc:
        raise ApiError(exc.reason, str(exc)) from None
    account, nonce, expires = signed.account, signed.nonce, signed.expires
    address = bytes.fromhex(account[2:])
    member_id = node.domain.member_of(address)
    role = node.domain.role_of(address) if any(member_id) else 0
    if not role:
        raise ApiError("not_member", f"{account} is not an account of an active member; "
                       "ask the consortium admin to register it")
    # the node's replay window (yilian.node.request_replay); only members' nonces take space
    if not node.request_replay.first_use(address, bytes.fromhex(nonce), expires):
        raise ApiError("replayed", "this signed request was already used; sign "
                       "each request afresh (a new nonce)")
    return Caller(account, address, signed.audience, nonce, member_id, role, body, headers)


CallerDep = Annotated[Caller, Depends(signed_caller)]
RouteCheckedCallerDep = Annotated[Caller, Depends(signed_caller_for_route)]
