"""``POST /rpc`` (and ``POST /``): Ethereum JSON-RPC over HTTP, single requests and batches."""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from yilian.api.deps import app_state
from yilian.api.reasons import http_status, rpc_error
from yilian.api.rpc import RpcHandler

router = APIRouter(tags=["json-rpc"])


def get_rpc(request: Request) -> RpcHandler:
    """The app's one JSON-RPC handler (``create_app`` keeps it on the app state)."""
    return app_state(request, "rpc", RpcHandler)


RpcDep = Annotated[RpcHandler, Depends(get_rpc)]

# JSON-RPC has its own share of worker threads, apart from the default pool that the
# synchronous REST routes share, so no number of slow REST requests delays it. One limiter
# per event loop (a test client may run several loops in turn).
RPC_THREADS = 16
_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary())


def _rpc_limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _LIMITERS.get(loop)
    if limiter is None:
        limiter = _LIMITERS[loop] = anyio.CapacityLimiter(RPC_THREADS)
    return limiter


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, separators=(",", ":")), status_code=status,
                    media_type="application/json")


def _refusal(reason: str, message: str) -> Response:
    """A request refused before parsing: the table's status and JSON-RPC error."""
    error = rpc_error(reason, message).to_json()
    return _json({"jsonrpc": "2.0", "id": None, "error": error}, http_status(reason))


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/rpc", summary="Ethereum JSON-RPC 2.0 endpoint (single request or batch)")
@router.post("/", include_in_schema=False)
async def json_rpc(request: Request, rpc: RpcDep) -> Response:
    limit = rpc.limits.max_request_bytes
    body = await read_limited(request, limit)
    if body is None:
        return _refusal("too_large", f"request body exceeds the limit of {limit} bytes; send "
                        "smaller batches")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype not in ("application/json", ""):
        return _refusal("unsupported_media_type",
                        f"content-type must be application/json, got {ctype}")
    result = await anyio.to_thread.run_sync(rpc.handle_bytes, body, limiter=_rpc_limiter())
    if result is None:
        return Response(status_code=204)
    return _json(result)
