"""The OpenAPI document of the ``/v1`` REST API: its error shape and signature headers.

FastAPI derives the document from the routes; two things it cannot see are added here:

* the one error shape every ``/v1`` refusal has, ``{"error": {"reason", "message", ...}}``
  (:class:`ErrorResponse`, see :mod:`yilian.api.auth`), declared for each status in
  :data:`ERROR_RESPONSES` on every ``/v1`` route (``create_app`` passes it to the routers);
* the five request-signature headers (:mod:`yilian.protocol.signed_request`), read by
  :func:`~yilian.api.auth.signed_caller` from the raw request, declared as required header
  parameters on every operation that depends on it. The operations without them commit a
  transaction the caller signed (the transaction is the authorisation).

The interactive pages ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) are served with their
assets from the node itself (``fastapi-offline``; see ``create_app``), so they work without
internet access.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from yilian.api.auth import signed_caller, signed_caller_for_route
from yilian.protocol.signed_request import (
    ACCOUNT_HEADER,
    AUDIENCE_HEADER,
    EXPIRES_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
)

__all__ = ["ERROR_RESPONSES", "SIGNATURE_HEADERS", "ErrorDetail", "ErrorResponse",
           "install_openapi", "signed_operations"]


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``reason`` tag for programs, a ``message`` for people."""

    model_config = ConfigDict(extra="allow")

    reason: str = Field(description="stable tag, e.g. grant_revoked, replayed, not_member",
                        examples=["grant_revoked"])
    message: str = Field(description="what happened and what to do",
                         examples=["grant 7 was revoked by its owner"])


class ErrorResponse(BaseModel):
    """Every ``/v1`` error: ``{"error": {"reason", "message", ...more fields by reason}}``."""

    error: ErrorDetail


_ERRORS: dict[int, str] = {
    400: "The request is malformed (e.g. JSON nested too deep).",
    401: "The request signature is missing, invalid, expired or replayed.",
    403: "The signer's member may not do this (role, suspended member, not a party).",
    404: "The record, version, grant or member does not exist.",
    409: "Conflicts with the chain's state (e.g. a request id used for another read).",
    410: "The record version was removed (a tombstone).",
    413: "The request body is over the node's size limit.",
    422: "A field of the request is invalid; the message names it.",
    502: "The record's custodian answered with an error.",
    503: "The node cannot serve this now (custodian unavailable, no quorum, ...).",
    504: "The transaction did not commit in time; retry with the same request.",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in _ERRORS.items()
}

SIGNATURE_HEADERS: dict[str, str] = {
    ACCOUNT_HEADER: "The signing account (0x address) of a member.",
    AUDIENCE_HEADER: "The node the request is for (its `audience` in /healthz; for a key "
                     "request, the record's custodian center), so it cannot be replayed at "
                     "another node.",
    NONCE_HEADER: "32 lowercase hex digits (128 random bits), new for every request.",
    EXPIRES_HEADER: "Unix seconds after which the signature is refused.",
    SIGNATURE_HEADER: "0x, 65 bytes: EIP-191 signature over method, path, body hash, nonce, "
                      "expiry and chain id (yilian.protocol.signed_request; the SDK signs).",
}


_SIGNED = frozenset({signed_caller, signed_caller_for_route})


def _dependencies(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _dependencies(dep)


def signed_operations(routers: Iterable[APIRouter]) -> set[tuple[str, str]]:
    """``(path, method)`` of every operation of ``routers`` whose caller must sign."""
    out: set[tuple[str, str]] = set()
    for route in (r for router in routers for r in router.routes):
        if isinstance(route, APIRoute) and _SIGNED.intersection(
                _dependencies(route.dependant)):
            out.update((route.path_format, m.lower()) for m in route.methods or ())
    return out


def _header_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": True, "description": description,
            "schema": {"type": "string"}}


def install_openapi(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Make ``app.openapi()`` declare the signature headers on the signed operations of
    ``routers`` (included in ``app`` without a further prefix)."""
    signed = signed_operations(routers)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            params = doc.setdefault("components", {}).setdefault("parameters", {})
            refs = []
            for name, description in SIGNATURE_HEADERS.items():
                key = name.replace("-", "")
                params[key] = _header_parameter(name, description)
                refs.append({"$ref": f"#/components/parameters/{key}"})
            for path, method in sorted(signed):
                operation = doc["paths"][path][method]
                operation["parameters"] = [*operation.get("parameters", []), *refs]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
