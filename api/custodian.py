"""Talking to a record's custodian: key requests are served by the custodian's key service
alone, here or at the custodian's node after forwarding.

A node that is not the custodian forwards the signed request unchanged (it names the
custodian as its audience, so the custodian checks it again) and passes back only a
key-service answer: a 200 of the expected shape, checked by the route's ``answer``
function, or a 4xx/5xx ``{"error": {reason, message}}`` (other fields dropped). Redirects
are not followed; anything else (a 3xx, another shape, extra fields, other records) is the
custodian's fault: 502 ``bad_custodian_answer``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import httpx
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yilian.api.auth import ApiError
from yilian.api.json_bytes import hex0x
from yilian.node.domain import code_of
from yilian.node.key_types import KeyRelease, ServiceError
from yilian.node.node_api import NodeAPI

FORWARDED_HEADER = "X-Yilian-Forwarded"
FORWARD_TIMEOUT_S = 45.0  # the custodian's own commit wait is 30 s
MAX_FORWARD_ANSWER = 1 << 20

AnswerT = TypeVar("AnswerT", bound=BaseModel)

# A key request's ``enc_key``: the encryption public key the caller holds.
HeldEncKey = Annotated[str | None, Field(
    pattern=r"^0x[0-9a-fA-F]{2,256}$",
    description="the encryption public key the caller holds the private half of: the "
    "custodian refuses the request (wrong_enc_key) before any read is spent unless it is "
    "the caller's registered key, so the key it wraps can be opened")]

# (HTTP status, body) of a custodian's answer -> (status, JSON) to pass on, or None
AnswerCheck = Callable[[int, bytes], tuple[int, dict[str, Any]] | None]

# One forwarding client per event loop: connections to custodians are kept alive (and an
# httpx client is costly to create: it builds an SSL context).
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary())


class _CustodianError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reason: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    message: str = Field(max_length=4096)
    item: int | None = Field(default=None, ge=0, lt=1024)  # a batch's refused item
    record_id: str | None = Field(default=None, pattern=r"^0x[0-9a-f]{64}$")


class _CustodianRefusal(BaseModel):
    """A custodian's error answer: only the documented shape is passed on."""

    model_config = ConfigDict(extra="forbid")
    error: _CustodianError


class ReleasedKey(BaseModel):
    """One record version's data key, wrapped for the caller, and the receipt it was
    released under (None: the owner reading its own record needs none)."""

    model_config = ConfigDict(extra="forbid")
    record_id: str
    version: int
    wrapped_key: str
    receipt_tx: str | None
    receipt_block_number: int | None
    receipt_block_hash: str | None


def released_key(out: KeyRelease) -> ReleasedKey:
    return ReleasedKey(record_id=hex0x(out.record_id), version=out.version,
                       wrapped_key=hex0x(out.wrapped_key),
                       receipt_tx=None if out.receipt_tx is None else hex0x(out.receipt_tx),
                       receipt_block_number=out.block_number,
                       receipt_block_hash=None if out.block_hash is None
                       else hex0x(out.block_hash))


def service_error(exc: ServiceError) -> ApiError:
    """A key service's refusal as the API's error."""
    return ApiError(exc.reason, str(exc), exc.extra)


def refusal_answer(status: int, content: bytes) -> tuple[int, dict[str, Any]] | None:
    """A custodian's 4xx/5xx key-service error, reduced to its reason and message (and,
    for a batch, the refused item and its record id, when well formed); None for any
    other answer."""
    if len(content) > MAX_FORWARD_ANSWER or not 400 <= status < 600:
        return None
    try:
        err = _CustodianRefusal.model_validate_json(content).error
    except ValidationError:
        return None
    return status, {"error": err.model_dump(exclude_none=True)}


def key_service_answer(status: int, content: bytes, model: type[AnswerT],
                       fits: Callable[[AnswerT], bool]) -> tuple[int, dict[str, Any]] | None:
    """A custodian's answer as (status, JSON) to pass on, or None if it is none: a 200 of
    exactly ``model``'s shape (no other fields) that ``fits`` the request, or a 4xx/5xx
    error (:func:`refusal_answer`)."""
    if status != 200:
        return refusal_answer(status, content)
    if len(content) > MAX_FORWARD_ANSWER:
        return None
    try:
        answer = model.model_validate_json(content)
    except ValidationError:
        return None
    return (200, answer.model_dump()) if fits(answer) else None


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
                ) -> tuple[int, bytes | None]:
    """POST and read the answer: its status and body, or None past MAX_FORWARD_ANSWER
    bytes (not read further)."""
    async with client.stream("POST", url, content=body, headers=headers,
                             follow_redirects=False) as resp:
        content = bytearray()
        async for chunk in resp.aiter_bytes():
            content += chunk
            if len(content) > MAX_FORWARD_ANSWER:
                return resp.status_code, None
        return resp.status_code, bytes(content)


async def forward(node: NodeAPI, center: bytes, path: str, caller_headers: dict[str, str],
                  body: bytes, answer: AnswerCheck) -> JSONResponse:
    """Send a key request on to ``center``'s node and pass back what ``answer`` accepts of
    its response (see the module doc)."""
    member = await anyio.to_thread.run_sync(node.domain.member, center)
    custodian = code_of(center)
    if member is None or not member.endpoint:
        raise ApiError("custodian_unavailable",
                       f"the record's custodian {custodian} has no registered endpoint")
    if not member.endpoint.startswith(("http://", "https://")):
        raise ApiError("custodian_unavailable", f"the custodian {custodian}'s registered "
                       f"endpoint {member.endpoint!r} is not an http(s) URL")
    loop = asyncio.get_running_loop()
    client = _CLIENTS.get(loop)
    if client is None:
        client = _CLIENTS[loop] = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S,
                                                    follow_redirects=False)
    try:
        status, content = await asyncio.wait_for(
            _post(client, member.endpoint.rstrip("/") + path, body,
                  {**caller_headers, FORWARDED_HEADER: "1", "Content-Type": "application/json"}),
            FORWARD_TIMEOUT_S)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise ApiError("custodian_unavailable",
                       f"the record's custodian center {custodian} ({member.endpoint}) did not "
                       f"answer: {exc!r}. Only the custodian holds the record's data key: "
                       "retry when it is back, or ask the owner") from None
    passed = None if content is None else answer(status, content)
    if passed is None:
        raise ApiError("bad_custodian_answer", f"the custodian {custodian} answered HTTP "
                       f"{status} with something other than a key-service answer; "
                       "nothing was passed on. Retry later, or report it to that center")
    return JSONResponse(passed[1], status_code=passed[0])
