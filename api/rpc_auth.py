"""Bearer-token authentication of JSON-RPC (``POST /rpc``, ``POST /``) and WebSocket
(``/ws``, ``/``), as ASGI middleware in front of the whole app.

When :func:`yilian.node.rpc_tokens.auth_required` is false (every listen address is
loopback, or the config says so) nothing is checked. Otherwise:

* HTTP: ``Authorization: Bearer <token>`` must hold a valid token of this node, else HTTP
  401 with a JSON-RPC error body (code ``-40100``) and ``WWW-Authenticate: Bearer``; the
  body is not read;
* WebSocket: the same header on the handshake (web3.py and ethers in Node can send it; a
  browser cannot, and is not supported), else the handshake is denied with HTTP 401; an
  accepted connection is closed with code 1008 when the token expires;
* a token obtained by signing (not an operator token) is checked again on every request
  (once per connection for WebSocket) against the member registry at the head: a
  suspended member, a removed account or a changed role ends it at once.

The verified :class:`~yilian.api.rpc_permissions.Access` is put in a context variable for
the request or connection; :func:`yilian.api.rpc_permissions.guarded` applies it per method.
Challenges for ``/v1/auth/token`` live here too (:class:`Challenges`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yilian.api.reasons import rpc_error
from yilian.api.rpc_permissions import CURRENT, Access
from yilian.contracts.addresses import ROLE_NAMES
from yilian.node.node_api import NodeAPI
from yilian.node.rpc_tokens import TokenError, TokenKey, auth_required, secret_path
from yilian.protocol import credit_code

HTTP_PATHS = frozenset({"/rpc", "/"})
WS_PATHS = frozenset({"/ws", "/"})


def load_token_key(node: NodeAPI) -> TokenKey:
    """The node's token key (its secret file is created 0600 on first use)."""
    return TokenKey.load_or_create(secret_path(node.config, node.home))


def member_access(node: NodeAPI, account: bytes) -> tuple[bytes, str] | None:
    """(member id, role name) of an account of an active member at the head, else None."""
    member_id = node.domain.member_of(account)
    role = node.domain.role_of(account) if any(member_id) else 0
    return (member_id, ROLE_NAMES[role]) if role in ROLE_NAMES else None


def verify_bearer(node: NodeAPI, key: TokenKey, header: str | None, now: float | None = None
                  ) -> Access:
    """The access an ``Authorization`` header grants; TokenError otherwise."""
    if not header:
        raise TokenError("unauthenticated", "this node's JSON-RPC needs a bearer token: send "
                         "'Authorization: Bearer <token>' (get one by signing a challenge at "
                         "/v1/auth/challenge and /v1/auth/token, or from the node operator)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("invalid_token", "the Authorization header must be 'Bearer <token>'")
    claims = key.verify(token.strip(), now)
    try:
        member_id = credit_code.to_bytes32(claims.member) if claims.member else b"\x00" * 32
    except credit_code.CreditCodeError:
        raise TokenError("invalid_token", "the token's member is not a credit code") from None
    if claims.is_operator:
        return Access(claims, member_id, None)
    try:
        account = bytes.fromhex(claims.subject[2:]) if claims.subject.startswith("0x") else b""
    except ValueError:
        account = b""
    if len(account) != 20:
        raise TokenError("invalid_token", "the token's subject is not an account")
    now_member = member_access(node, account)
    if now_member != (member_id, claims.role):
        raise TokenError("membership_changed", f"{claims.subject} is no longer an account of "
                         f"an active {claims.role} member {claims.member}; get a new token")
    return Access(claims, member_id, account)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _denial(exc: TokenError) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    err = rpc_error(exc.reason, str(exc))
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": err.to_json()}).encode()
    challenge = f'Bearer realm="yilian", error="invalid_token", error_description="{exc.reason}"'
    return body, [(b"content-type", b"application/json"),
                  (b"content-length", str(len(body)).encode()),
                  (b"www-authenticate", challenge.encode())]


class RpcAuth:
    """ASGI middleware: JSON-RPC and WebSocket need a token unless the node is loopback-only."""

    def __init__(self, app: ASGIApp, node: NodeAPI, key: TokenKey) -> None:
        self.app = app
        self.node = node
        self.key = key
        self.required = auth_required(node.config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        path = scope.get("path", "")
        guarded = (kind == "http" and path in HTTP_PATHS) or (kind == "websocket"
                                                               and path in WS_PATHS)
        if not (self.required and guarded):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        try:
            access = await run_in_threadpool(verify_bearer, self.node, self.key, header)
        except TokenError as exc:
            await (self._deny_http if kind == "http" else self._deny_ws)(exc, receive, send,
                                                                         scope)
            return
        reset = CURRENT.set(access)
        try:
            if kind == "websocket":
                await self.app(scope, _until(access.claims.expires_at, receive, send), send)
            else:
                await self.app(scope, receive, send)
        finally:
            CURRENT.reset(reset)

    @staticmethod
    async def _deny_http(exc: TokenError, _receive: Receive, send: Send, _scope: Scope
                         ) -> None:
        body, headers = _denial(exc)
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _deny_ws(exc: TokenError, receive: Receive, send: Send, scope: Scope) -> None:
        message = await receive()  # websocket.connect
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            body, headers = _denial(exc)
            await send({"type": "websocket.http.response.start", "status": 401,
                        "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


def _until(expires_at: int, receive: Receive, send: Send) -> Receive:
    """``receive`` that ends the connection (close 1008) when the token expires."""
    closed = False

    async def receive_until() -> Message:
        nonlocal closed
        if closed:
            return {"type": "websocket.disconnect", "code": 1008}
        try:
            return await asyncio.wait_for(receive(), max(0.0, expires_at - time.time()))
        except TimeoutError:
            closed = True
            await send({"type": "websocket.close", "code": 1008,
                        "reason": "token expired; reconnect with a new token"})
            return {"type": "websocket.disconnect", "code": 1008}

    return receive_until


@dataclass(frozen=True)
class Challenge:
    account: str  # lower-case 0x address it was issued to
    expires: float


class Challenges:
    """Outstanding login challenges: one-time, short-lived, bounded in number."""

    def __init__(self, ttl_s: int, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Challenge] = OrderedDict()

    def issue(self, account: str, now: float | None = None) -> tuple[str, float]:
        current = now if now is not None else time.time()
        nonce = secrets.token_hex(16)
        with self._lock:
            while self._items and (len(self._items) >= self.max_entries
                                   or next(iter(self._items.values())).expires <= current):
                self._items.popitem(last=False)  # oldest first: they expire first
            self._items[nonce] = Challenge(account.lower(), current + self.ttl_s)
        return nonce, current + self.ttl_s

    def take(self, nonce: str, account: str, now: float | None = None) -> bool:
        """Use a challenge once: true if it was issued to ``account`` and is still fresh."""
        current = now if now is not None else time.time()
        with self._lock:
            found = self._items.get(nonce)
            if found is None or found.account != account.lower():
                return False
            del self._items[nonce]
        return found.expires > current

    def __len__(self) -> int:
        return len(self._items)
