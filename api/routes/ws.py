"""WebSocket JSON-RPC (``/ws`` and ``/``): every HTTP method plus ``eth_subscribe``.

Subscriptions: ``newHeads`` (each committed block's header) and ``logs`` (each matching
log of each committed block, in order). A subscriber that falls more than
``QUEUE_LIMIT`` messages behind is disconnected (close code 1008) rather than letting
the node buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import secrets
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

import yilian.api.rpc_params as P
from yilian.api.rpc import MAX_JSON_DEPTH, RpcHandler, json_too_deep
from yilian.api.rpc_errors import (
    InvalidParams,
    InvalidRequest,
    LimitExceeded,
    ParseError,
    RpcError,
)
from yilian.api.rpc_permissions import visible_logs
from yilian.node.service import CommittedBlock, Node

router = APIRouter()
QUEUE_LIMIT = 10_000


class _Connection:
    def __init__(self, ws: WebSocket, rpc: RpcHandler, node: Node) -> None:
        self.ws = ws
        self.rpc = rpc
        self.node = node
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.subs: dict[str, tuple[str, P.LogFilter | None]] = {}
        self.context = contextvars.copy_context()  # the caller's token (api.rpc_auth)
        self.unsubscribe_node = node.subscribe(self._on_block)

    def _on_block(self, committed: CommittedBlock) -> None:
        """Called in the producer thread: hand the block to the event loop."""
        if self.subs:
            self.loop.call_soon_threadsafe(self._push_block, committed, context=self.context)

    def _push_block(self, committed: CommittedBlock) -> None:
        for sid, (kind, spec) in list(self.subs.items()):
            if kind == "newHeads":
                self._send_notification(sid, self.rpc.head_json(committed))
            elif spec is not None:
                for entry in visible_logs(self.node, self.rpc.logs_json(committed, spec)):
                    self._send_notification(sid, entry)

    def _send_notification(self, sid: str, result: Any) -> None:
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.subs.clear()
            self.queue.put_nowait(None)  # tells the writer to close
            return
        self.queue.put_nowait(json.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                          "params": {"subscription": sid, "result": result}}))

    def _subscribe(self, params: Any) -> str:
        if not isinstance(params, list) or not params:
            raise InvalidParams('invalid params: eth_subscribe takes ["newHeads"] or '
                                '["logs", {address, topics}]')
        kind = params[0]
        if len(self.subs) >= self.rpc.limits.max_ws_subscriptions:
            raise LimitExceeded(f"at most {self.rpc.limits.max_ws_subscriptions} subscriptions "
                                "per connection")
        if kind == "newHeads":
            spec = None
        elif kind == "logs":
            spec = P.log_filter(params[1] if len(params) > 1 else {}, "params[1]")
        else:
            raise InvalidParams(f"invalid params: unsupported subscription {kind!r}; use "
                                "newHeads or logs")
        sid = "0x" + secrets.token_hex(16)
        self.subs[sid] = (kind, spec)
        return sid

    async def handle(self, req: Any) -> Any:
        if isinstance(req, dict) and req.get("method") in ("eth_subscribe", "eth_unsubscribe"):
            req_id = req.get("id")
            try:
                if req.get("jsonrpc") != "2.0":
                    raise InvalidRequest('invalid request: need "jsonrpc": "2.0"')
                if req["method"] == "eth_subscribe":
                    result: Any = self._subscribe(req.get("params"))
                else:
                    p = req.get("params")
                    if not isinstance(p, list) or len(p) != 1:
                        raise InvalidParams("invalid params: eth_unsubscribe takes [id]")
                    result = self.subs.pop(p[0], None) is not None
            except RpcError as exc:
                return {"jsonrpc": "2.0", "id": req_id, "error": exc.to_json()}
            return {"jsonrpc": "2.0", "id": req_id, "result": result}
        if isinstance(req, list) and req:
            out = [await self.handle(item) for item in req[: self.rpc.limits.max_batch]]
            return [o for o in out if o is not None] or None
        return await run_in_threadpool(self.rpc.handle_payload, req)

    async def writer(self) -> None:
        while True:
            message = await self.queue.get()
            if message is None:
                await self.ws.close(code=1008, reason="subscriber too slow")
                return
            await self.ws.send_text(message)

    def close(self) -> None:
        self.unsubscribe_node()
        self.subs.clear()


@router.websocket("/ws")
@router.websocket("/")
async def websocket_rpc(ws: WebSocket) -> None:
    await ws.accept()
    app = ws.app
    conn = _Connection(ws, app.state.rpc, app.state.node)
    writer = asyncio.create_task(conn.writer())
    limit = conn.rpc.limits.max_request_bytes
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            # web3.py 8 sends binary frames by default; accept both kinds, as geth does.
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
            if len(text) > limit:
                err: RpcError = LimitExceeded(f"message exceeds the limit of {limit} bytes")
                response: Any = {"jsonrpc": "2.0", "id": None, "error": err.to_json()}
            elif json_too_deep(text):
                err = ParseError(f"parse error: JSON nested deeper than {MAX_JSON_DEPTH} levels")
                response = {"jsonrpc": "2.0", "id": None, "error": err.to_json()}
            else:
                try:
                    payload = json.loads(text)
                except ValueError as exc:
                    response = {"jsonrpc": "2.0", "id": None,
                                "error": ParseError(f"parse error: {exc}").to_json()}
                else:
                    response = await conn.handle(payload)
            if response is not None:
                conn.queue.put_nowait(json.dumps(response, separators=(",", ":")))
    except WebSocketDisconnect:
        pass
    finally:
        conn.close()
        writer.cancel()
