"""How every error of the HTTP API is answered, in its documented shape.

* ``/v1``, ``/healthz``, ``/metrics`` and any unknown path: ``{"error": {"reason": tag,
  "message": sentence, ...}}`` with the HTTP status :mod:`yilian.api.reasons` gives the tag
  (``ApiError`` and the framework's own errors alike).
* ``/rpc`` and ``/`` (JSON-RPC): a JSON-RPC error object with ``id: null``, its code the
  table's for the tag (``-32600`` for the framework's refusals), whatever the HTTP status.

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
from yilian.api.reasons import REASONS, http_status, rpc_error
from yilian.api.rpc_errors import InvalidRequest

JSON_RPC_PATHS = frozenset({"/rpc", "/", "/ws"})

# The reason tags of the statuses the web framework raises (routing, body parsing); any
# other status it raises is answered as it is, tagged ``http_<status>``.
FRAMEWORK_REASONS: dict[int, str] = {http_status(tag): tag for tag in (
    "bad_json", "unauthenticated", "forbidden", "not_found", "method_not_allowed",
    "too_large", "unsupported_media_type", "invalid_request", "internal")}
MESSAGES: dict[str, str] = {
    "not_found": "no such path; see /docs for the API",
    "method_not_allowed": "this path does not take HTTP {method}; see /docs for the API",
    "internal": "internal error: the node logged it",
}


def reason_response(request: Request, reason: str, message: str,
                    extra: dict[str, Any] | None = None,
                    headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The answer to ``reason``: its table status, in the shape of the request's path."""
    return _response(request, http_status(reason), reason, message, extra, headers)


def _response(request: Request, status: int, reason: str, message: str,
              extra: dict[str, Any] | None = None,
              headers: Mapping[str, str] | None = None) -> JSONResponse:
    if request.url.path in JSON_RPC_PATHS:
        known = REASONS.get(reason)
        error = (rpc_error(reason, message) if known is not None and known.rpc is not None
                 else InvalidRequest(f"invalid request: {message}"))
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": None, "error": error.to_json()}
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
    return reason_response(request, "invalid_request",
                           f"the request does not match the API: {shown}",
                           {"fields": fields})


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    reason = FRAMEWORK_REASONS.get(status, f"http_{status}")
    message = MESSAGES.get(reason, str(exc.detail)).format(method=request.method)
    return _response(request, status, reason, message, headers=exc.headers)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    return reason_response(request, "internal", MESSAGES["internal"])


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _internal)
