"""The one error table of the HTTP API: every error answers in its documented shape.

* ``/v1``, ``/healthz``, ``/metrics`` and any unknown path: ``{"error": {"reason": tag,
  "message": sentence, ...}}`` with the HTTP status below (``ApiError`` carries its own).
* ``/rpc`` and ``/`` (JSON-RPC): a JSON-RPC error object with ``id: null``
  (``-32600``), whatever the HTTP status.

Error bodies are written with ``ensure_ascii`` so that no echoed input (a lone surrogate
in a path, say) can make rendering the error fail. A genuine bug is answered 500
``internal`` and still logged with its traceback (by the server, as before).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from yilian.api.auth import ApiError, AsciiJSONResponse, api_error_handler, error_body
from yilian.api.rpc_errors import InvalidRequest

JSON_RPC_PATHS = frozenset({"/rpc", "/", "/ws"})

# HTTP status -> the ``reason`` tag of an error raised by routing or the framework.
REASONS: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal",
}
MESSAGES: dict[int, str] = {
    404: "no such path; see /docs for the API",
    405: "this path does not take HTTP {method}; see /docs for the API",
    500: "internal error; the node logged it",
}


def error_response(request: Request, status: int, reason: str, message: str,
                   extra: dict[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    if request.url.path in JSON_RPC_PATHS:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": None,
                                "error": InvalidRequest(f"invalid request: {message}").to_json()}
    else:
        body = error_body(reason, message, extra)
    return AsciiJSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        fields.append({"field": _field(loc), "in": str(loc[0]) if loc else "body",
                       "message": str(err.get("msg", "invalid"))})
    shown = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error_response(request, 422, "invalid_request",
                          f"the request does not match the API: {shown}",
                          {"fields": fields})


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = MESSAGES.get(status, str(exc.detail)).format(method=request.method)
    return error_response(request, status, REASONS.get(status, f"http_{status}"), message,
                          headers=exc.headers)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 500, "internal", MESSAGES[500])


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _internal)
