"""ASGI middleware guarding the ``/v1`` REST API's request bodies before any parsing.

py-evm raises the interpreter's recursion limit, so ``json.loads`` of deeply nested JSON
overflows the C stack and kills the process, and FastAPI's own parser accepts ``NaN``
(see :mod:`yilian.api.json_guard`). FastAPI parses a body before any dependency runs, so
the check must come first: this middleware reads the whole body (refusing more than
``max_bytes`` with 413), parses a non-empty POST/PUT/PATCH body strictly (400
``bad_json``: too deep, not UTF-8, not JSON, NaN/Infinity), then hands the same bytes on.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yilian.api.json_guard import JsonRejected, loads_strict
from yilian.api.reasons import http_status

PREFIX = "/v1/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # a GET's body is never parsed


class BodyGuard:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _reject(send, "too_large", f"request body over {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        if scope.get("method") in BODY_METHODS and body.strip():
            try:
                loads_strict(body)
            except JsonRejected as exc:
                await _reject(send, "bad_json", f"request body refused: {exc.message}")
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reject(send: Send, reason: str, message: str) -> None:
    payload: dict[str, Any] = {"error": {"reason": reason, "message": message}}
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": http_status(reason),
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
