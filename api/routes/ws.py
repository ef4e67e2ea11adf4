"""WebSocket JSON-RPC (``/ws`` and ``/``): every HTTP method plus ``eth_subscribe``.

Subscriptions: ``newHeads`` (each committed block's header) and ``logs`` (each matching
log of each committed block, in order).

Bounded (``rpc`` section of the node config): open connections in total
(``max_ws_connections``) and per client address (``max_ws_connections_per_ip``; an
over-limit connection is accepted and closed at once with code 1013 and the reason),
subscriptions per connection (``max_ws_subscriptions``, -32005 beyond), and what waits to
be sent per connection (``max_ws_queue`` messages and ``max_ws_queue_bytes`` bytes; a
single larger answer is still sent when nothing else waits). A client that lets its
queue overflow is a slow consumer: its queue is dropped and the connection closed with
code 1008 and the reason. So a connection holds at most its queue plus one answer, and the
node at most ``max_ws_connections`` of them.

Frames are parsed and framed exactly as ``POST /rpc`` bodies (:mod:`yilian.api.rpc_framing`).
Known gap: the client address is the TCP peer; behind a reverse proxy all clients share the
proxy's address (the total cap still holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import secrets
import threading
from collections import deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

import yilian.api.rpc_framing as F
from yilian.api.rpc import RpcHandler
from yilian.api.rpc_errors import InvalidParams, LimitExceeded
from yilian.api.rpc_log_params import LogFilter, log_filter
from yilian.api.rpc_logs import logs_json
from yilian.api.rpc_permissions import visible_logs
from yilian.node.config import RpcLimits
from yilian.node.interfaces import CommittedBlock
from yilian.node.node_api import NodeAPI

router = APIRouter()
CLOSE_TOO_SLOW = 1008  # policy violation
CLOSE_TRY_LATER = 1013  # try again later
CLOSE_TIMEOUT_S = 2.0
SUBSCRIPTION_METHODS = ("eth_subscribe", "eth_unsubscribe")


class ConnectionLimiter:
    """Open WebSocket connections, in total and per client address."""

    def __init__(self, limits: RpcLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._per_ip: dict[str, int] = {}
        self._total = 0

    def acquire(self, ip: str) -> str | None:
        """None when the connection may stay open, else the reason to close it."""
        with self._lock:
            if self._total >= self.limits.max_ws_connections:
                return (f"node has {self.limits.max_ws_connections} WebSocket connections "
                        "(rpc.max_ws_connections); retry later")
            if self._per_ip.get(ip, 0) >= self.limits.max_ws_connections_per_ip:
                return (f"{self.limits.max_ws_connections_per_ip} connections from your "
                        "address (rpc.max_ws_connections_per_ip); close one")
            self._total += 1
            self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
            return None

    def release(self, ip: str) -> None:
        with self._lock:
            self._total -= 1
            left = self._per_ip.pop(ip) - 1
            if left:
                self._per_ip[ip] = left

    @property
    def total(self) -> int:
        return self._total


class Outbox:
    """Messages waiting to be sent on one connection, bounded in count and bytes."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.items: deque[str] = deque()
        self.size = 0
        self.overflowed = asyncio.Event()
        self.ready = asyncio.Event()

    def put(self, text: str) -> None:
        if self.overflowed.is_set():
            return
        if len(self.items) >= self.max_messages or (
                self.items and self.size + len(text) > self.max_bytes):
            self.items.clear()
            self.size = 0
            self.overflowed.set()
            return
        self.items.append(text)
        self.size += len(text)
        self.ready.set()

    def take(self) -> str | None:
        if not self.items:
            self.ready.clear()
            return None
        text = self.items.popleft()
        self.size -= len(text)
        return text


class _Connection:
    def __init__(self, ws: WebSocket, rpc: RpcHandler, node: NodeAPI) -> None:
        self.ws = ws
        self.rpc = rpc
        self.node = node
        self.limits = rpc.limits
        self.loop = asyncio.get_running_loop()
        self.outbox = Outbox(self.limits.max_ws_queue, self.limits.max_ws_queue_bytes)
        self.subs: dict[str, tuple[str, LogFilter | None]] = {}
        self.context = contextvars.copy_context()  # the caller's token (api.rpc_auth)
        self.unsubscribe_node = node.subscribe(self._on_block)

    def _on_block(self, committed: CommittedBlock) -> None:
        """Called in the producer thread: hand the block to the event loop."""
        if self.subs:
            self.loop.call_soon_threadsafe(self._push_block, committed, context=self.context)

    def _push_block(self, committed: CommittedBlock) -> None:
        for sid, (kind, spec) in list(self.subs.items()):
            if self.outbox.overflowed.is_set():
                self.subs.clear()
                return
            if kind == "newHeads":
                self._notify(sid, self.rpc.head_json(committed))
            elif spec is not None:
                for entry in visible_logs(self.node, logs_json(committed, spec)):
                    self._notify(sid, entry)

    def _notify(self, sid: str, result: Any) -> None:
        self.outbox.put(json.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                    "params": {"subscription": sid, "result": result}}))

    def _subscribe(self, params: list[Any]) -> str:
        if not params:
            raise InvalidParams('invalid params: eth_subscribe takes ["newHeads"] or '
                                '["logs", {address, topics}]')
        kind = params[0]
        if len(self.subs) >= self.limits.max_ws_subscriptions:
            raise LimitExceeded(f"at most {self.limits.max_ws_subscriptions} subscriptions "
                                "per connection (rpc.max_ws_subscriptions); unsubscribe first")
        if kind == "newHeads" and len(params) == 1:
            spec = None
        elif kind == "logs" and len(params) <= 2:
            spec = log_filter(params[1] if len(params) > 1 else {}, "params[1]")
        else:
            raise InvalidParams(f"invalid params: unsupported subscription {str(kind)[:40]!r}; "
                                'use ["newHeads"] or ["logs", {address, topics}]')
        sid = "0x" + secrets.token_hex(16)
        self.subs[sid] = (kind, spec)
        return sid

    def _dispatch_here(self, method: str, params: Any, _: F.WorkBudget) -> Any:
        """eth_subscribe / eth_unsubscribe: they change this connection, so they run on
        the event loop (quick: no node access beyond parsing)."""
        if not isinstance(params, list):
            raise InvalidParams(f"invalid params: {method} takes a JSON array of parameters")
        if method == "eth_subscribe":
            return self._subscribe(params)
        if len(params) != 1 or not isinstance(params[0], str):
            raise InvalidParams("invalid params: eth_unsubscribe takes [subscription id "
                                "(a string)]")
        return self.subs.pop(params[0], None) is not None

    async def _one(self, req: Any, budget: F.WorkBudget) -> Any:
        if isinstance(req, dict) and req.get("method") in SUBSCRIPTION_METHODS:
            return F.handle_one(req, budget, self._dispatch_here)
        return await run_in_threadpool(F.handle_one, req, budget, self.rpc.call)

    async def handle(self, payload: Any) -> Any:
        budget = F.WorkBudget.start(self.limits)
        if isinstance(payload, list):
            refused = F.check_batch(payload, self.limits)
            if refused is not None:
                return refused
            out = [await self._one(item, budget) for item in payload]
            return [o for o in out if o is not None] or None
        return await self._one(payload, budget)

    async def reader(self) -> None:
        limit = self.limits.max_request_bytes
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            # web3.py 8 sends binary frames by default; accept both kinds, as geth does.
            data: str | bytes = message.get("text") or message.get("bytes") or b""
            if len(data) > limit:
                response: Any = F.error_response(None, LimitExceeded(
                    f"message exceeds the limit of {limit} bytes (rpc.max_request_bytes)"))
            else:
                payload, response = F.parse_body(data)
                if response is None:
                    response = await self.handle(payload)
            if response is not None:
                self.outbox.put(json.dumps(response, separators=(",", ":")))

    async def writer(self) -> None:
        while True:
            text = self.outbox.take()
            if text is None:
                await self.outbox.ready.wait()
                continue
            try:
                await self.ws.send_text(text)
            except Exception:  # the peer is gone; the reader sees the disconnect
                return

    def close(self) -> None:
        self.unsubscribe_node()
        self.subs.clear()


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # the peer may be gone or not reading
        await asyncio.wait_for(ws.close(code=code, reason=reason[:120]), CLOSE_TIMEOUT_S)


@router.websocket("/ws")
@router.websocket("/")
async def websocket_rpc(ws: WebSocket) -> None:
    app = ws.app
    limiter: ConnectionLimiter = app.state.ws_limiter
    ip = ws.client.host if ws.client is not None else "unknown"
    await ws.accept()
    refused = limiter.acquire(ip)
    if refused is not None:
        await _close(ws, CLOSE_TRY_LATER, refused)
        return
    conn = _Connection(ws, app.state.rpc, app.state.node)
    tasks = [asyncio.create_task(conn.reader()), asyncio.create_task(conn.writer()),
             asyncio.create_task(conn.outbox.overflowed.wait())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if isinstance(error, WebSocketDisconnect):
                return
            if error is not None:
                raise error
        if conn.outbox.overflowed.is_set():
            for task in tasks:
                task.cancel()
            await _close(ws, CLOSE_TOO_SLOW, (
                f"too slow: over {conn.limits.max_ws_queue} messages or "
                f"{conn.limits.max_ws_queue_bytes} bytes waiting (rpc.max_ws_queue*)"))
    finally:
        for task in tasks:
            task.cancel()
        conn.close()
        limiter.release(ip)
