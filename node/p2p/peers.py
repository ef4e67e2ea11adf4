"""PeerManager: the member-to-member mesh over authenticated, encrypted TCP.

Invariants:

* Every connection completed the handshake of
  :mod:`yilian.node.p2p.handshake`; peers whose key is not in ``members`` (the
  genesis member list) or who belong to another network never get past it.
* At most one connection per peer identity is registered.  When a second
  authenticated connection to the same peer appears (simultaneous dial, or a
  reconnect while the old socket is not yet known dead), both ends decide the
  same way, independent of timing:

    - if both connections were dialled by the same side, the newer one wins
      (the older one is presumed stale: the dialler only dials when it has no
      connection, so it has abandoned the old one);
    - otherwise the connection dialled by the lexicographically lower public
      key wins.

  Queued but unsent messages move to the winner; frames already written to
  the loser may be lost.
* Delivery is best-effort and at-most-once, in order per connection.  Upper
  layers (consensus, sync) must tolerate loss across reconnects.
* A malformed, oversized or unauthentic frame, an idle timeout, a send-queue
  overflow (``overflow="close"``) or a transport error closes only that
  connection (logged); the manager keeps serving and the dialler reconnects
  with capped exponential backoff (with jitter).
* Callback exceptions are logged and never close the connection or the manager.
* After :meth:`PeerManager.close` returns, every task the manager started has
  finished and every socket it owned is closed.

Message types: applications use ``FIRST_APP_TYPE (16) .. MAX_MSG_TYPE (65535)``;
``0..15`` are reserved for the transport (handshake, keep-alive) and are never
delivered to ``on_message``.  Bodies are any msgpack-serialisable value
(``bytes`` stay ``bytes``, ``str`` stays ``str``, tuples arrive as lists, map
keys must be ``str`` or ``bytes``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from yilian.node.p2p.frames import (
    DEFAULT_MAX_FRAME_BYTES,
    FIRST_APP_TYPE,
    MAX_MSG_TYPE,
    MSG_PING,
    ChannelClosed,
    DecodeLimits,
    FrameError,
    pack_message,
)
from yilian.node.p2p.handshake import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    HandshakeConfig,
    HandshakeError,
    HandshakeResult,
    Identity,
    Members,
    NetworkId,
    Verify,
    initiate,
    respond,
)

log = logging.getLogger(__name__)

#: ``on_message(peer_public_key, msg_type, body)``; may return an awaitable.
OnMessage = Callable[[bytes, int, Any], Awaitable[None] | None]
#: ``on_peer_connected(peer_public_key)`` / ``on_peer_disconnected(...)``.
OnPeer = Callable[[bytes], Awaitable[None] | None]

_PING_PAYLOAD = pack_message(MSG_PING, None)
DEFAULT_SEND_QUEUE_BYTES = 64 * 1024 * 1024


def _short(key: bytes) -> str:
    return key.hex()[:12]


@dataclass(frozen=True)
class PeerAddress:
    """A member to dial: where it listens and the identity key it must present."""

    host: str
    port: int
    public_key: bytes


@dataclass(frozen=True)
class PeerInfo:
    """Snapshot of the registered connection to one peer."""

    public_key: bytes
    outbound: bool  # True if we dialled this connection
    local_address: tuple[Any, ...] | None
    remote_address: tuple[Any, ...] | None
    connected_at: float  # event-loop time


class _Connection:
    def __init__(self, result: HandshakeResult, own_key: bytes, queue_size: int) -> None:
        self.peer = result.peer_public_key
        self.channel = result.channel
        self.outbound = result.outbound
        self.initiator_key = own_key if result.outbound else result.peer_public_key
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(queue_size)
        self.queued_bytes = 0  # payload bytes in ``queue``
        self.closed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.since = asyncio.get_running_loop().time()
        self.dropped = False
        self.overflow_drops = 0

    def offer(self, payload: bytes, max_bytes: int) -> bool:
        """Queue ``payload`` unless that would pass the queue's message count or
        ``max_bytes`` (a single larger message still goes when nothing is queued)."""
        if self.queue.full() or (self.queued_bytes
                                 and self.queued_bytes + len(payload) > max_bytes):
            return False
        self.queue.put_nowait(payload)
        self.queued_bytes += len(payload)
        return True

    def take(self) -> bytes:
        """The oldest queued payload (the queue must not be empty)."""
        payload = self.queue.get_nowait()
        self.queued_bytes -= len(payload)
        return payload

    def info(self) -> PeerInfo:
        w = self.channel.writer
        return PeerInfo(
            self.peer,
            self.outbound,
            w.get_extra_info("sockname"),
            w.get_extra_info("peername"),
            self.since,
        )


class PeerManager:
    """Listen for, dial and maintain authenticated connections to consortium members.

    Parameters (keyword-only):
        identity: our node key (public key as in genesis + ``sign`` callable).
        network: chain id + genesis hash; peers of another network are refused.
        verify: ``verify(public_key, message, signature) -> bool`` for peer keys.
        members: allowed peer keys (collection) or predicate; evaluated at each
            handshake (so a predicate may track membership changes).
        on_message: ``on_message(peer_key, msg_type, body)``, plain or async.
            Called sequentially per connection, in arrival order; while an
            async callback runs, that peer's connection is not read
            (backpressure).
        peers: members to dial (others may still dial us).  Our own key and
            duplicates are ignored.
        listen_host / listen_port: where to accept connections
            (``listen_host=None`` disables listening; port 0 = ephemeral,
            see :attr:`listen_address`).
        handshake_timeout: seconds for TCP connect and for the handshake.
        max_frame_bytes / limits: frame size cap (ciphertext bytes; the largest
            packed message is ``max_frame_bytes - 16``) and msgpack decode
            bounds (default: bin/str up to ``max_frame_bytes``, arrays/maps up
            to 100 000 entries).  Every member must use the same values.
        send_queue_size: per-connection bounded queue of outgoing messages.
        send_queue_bytes: and its bound in payload bytes (a peer that does not read must
            not make us hold ``send_queue_size`` frames of up to ``max_frame_bytes``).
        overflow: on a full queue, ``"close"`` the connection (default; the
            dialler reconnects) or ``"drop"`` the new message; logged either way.
        backoff_initial / backoff_max: redial delay, doubled per failure, capped.
        ping_interval / idle_timeout: keep-alive sent when the send side has
            been idle ``ping_interval`` s; a connection with nothing received for
            ``idle_timeout`` s is closed.
        max_pending_handshakes: unauthenticated inbound connections in progress
            beyond this are closed immediately.
        on_peer_connected / on_peer_disconnected: optional, plain or async;
            called when a peer gains/loses its registered connection (not for a
            switch between two connections of the same peer, not during
            :meth:`close`).
    """

    def __init__(
        self,
        *,
        identity: Identity,
        network: NetworkId,
        verify: Verify,
        members: Members,
        on_message: OnMessage,
        peers: Iterable[PeerAddress] = (),
        listen_host: str | None = "127.0.0.1",
        listen_port: int = 0,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        limits: DecodeLimits | None = None,
        send_queue_size: int = 1024,
        send_queue_bytes: int = DEFAULT_SEND_QUEUE_BYTES,
        overflow: Literal["close", "drop"] = "close",
        backoff_initial: float = 0.25,
        backoff_max: float = 30.0,
        ping_interval: float = 10.0,
        idle_timeout: float = 30.0,
        max_pending_handshakes: int = 64,
        on_peer_connected: OnPeer | None = None,
        on_peer_disconnected: OnPeer | None = None,
    ) -> None:
        if overflow not in ("close", "drop"):
            raise ValueError("overflow must be 'close' or 'drop'")
        if not 0 < ping_interval < idle_timeout:
            raise ValueError("need 0 < ping_interval < idle_timeout")
        if send_queue_size < 1:
            raise ValueError("send_queue_size must be >= 1")
        self.identity = identity
        self._hs = HandshakeConfig(
            identity=identity,
            network=network,
            verify=verify,
            members=members,
            timeout=handshake_timeout,
            max_frame_bytes=max_frame_bytes,
            limits=limits
            if limits is not None
            else DecodeLimits(max_bin_len=max_frame_bytes, max_str_len=max_frame_bytes),
        )
        self._on_message = on_message
        self._on_connected = on_peer_connected
        self._on_disconnected = on_peer_disconnected
        self._listen_host = listen_host
        self._listen_port = listen_port
        self._queue_size = send_queue_size
        self._queue_bytes = send_queue_bytes
        self._overflow = overflow
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        self._idle_timeout = idle_timeout
        self._max_pending = max_pending_handshakes
        self._pending = 0
        self._peer_addrs: dict[bytes, PeerAddress] = {}
        for addr in peers:
            if addr.public_key != identity.public_key:
                self._peer_addrs[addr.public_key] = addr
        self._conns: dict[bytes, _Connection] = {}
        self._dialers: dict[bytes, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # every socket we ever owned and that is still alive (weak: no cleanup needed)
        self._transports: weakref.WeakSet[asyncio.WriteTransport] = weakref.WeakSet()
        self._server: asyncio.Server | None = None
        self._started = False
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start listening (if enabled) and dialling the configured peers."""
        if self._started:
            raise RuntimeError("PeerManager already started")
        self._started = True
        if self._listen_host is not None:
            self._server = await asyncio.start_server(
                self._on_inbound, self._listen_host, self._listen_port
            )
        for addr in self._peer_addrs.values():
            self._start_dialer(addr)

    @property
    def listen_address(self) -> tuple[str, int]:
        """(host, port) actually bound; only valid after :meth:`start` with listening."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("not listening")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        """Stop listening, cancel every task, close every connection; idempotent."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        conns = list(self._conns.values())
        for conn in conns:
            self._drop(conn, "shutting down", graceful=True)
        while self._tasks:
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
        self._dialers.clear()
        await asyncio.gather(*(c.channel.wait_closed(1.0) for c in conns))
        # sockets whose handler task never got to run, losers of a tie-break, ...
        for transport in list(self._transports):
            if not transport.is_closing():
                transport.abort()
        for _ in range(2):
            await asyncio.sleep(0)  # let the transports' connection_lost callbacks run
        if self._server is not None:
            await self._server.wait_closed()

    # ------------------------------------------------------------------ peers

    def add_peer(self, address: PeerAddress) -> None:
        """Dial (and keep dialling) ``address``; replaces a previous address for that key."""
        if address.public_key == self.identity.public_key:
            return
        self._peer_addrs[address.public_key] = address
        old = self._dialers.pop(address.public_key, None)
        if old is not None:
            old.cancel()
        if self._started and not self._closing:
            self._start_dialer(address)

    def remove_peer(self, public_key: bytes) -> None:
        """Stop dialling ``public_key`` and close its connection (it may dial us again)."""
        self._peer_addrs.pop(public_key, None)
        task = self._dialers.pop(public_key, None)
        if task is not None:
            task.cancel()
        self.disconnect(public_key, "peer removed")

    def disconnect(self, public_key: bytes, reason: str = "disconnect requested") -> bool:
        """Close the connection to ``public_key`` (if any); the dialler may reconnect."""
        conn = self._conns.get(public_key)
        if conn is None:
            return False
        self._drop(conn, reason, graceful=True)
        return True

    def connected_peers(self) -> list[bytes]:
        """Public keys of peers with a registered (authenticated) connection, sorted."""
        return sorted(self._conns)

    def connection_info(self, public_key: bytes) -> PeerInfo | None:
        conn = self._conns.get(public_key)
        return None if conn is None else conn.info()

    # ------------------------------------------------------------------ sending

    def _payload(self, msg_type: int, body: Any) -> bytes:
        if isinstance(msg_type, bool) or not isinstance(msg_type, int):
            raise ValueError("msg_type must be an int")
        if not FIRST_APP_TYPE <= msg_type <= MAX_MSG_TYPE:
            raise ValueError(f"msg_type must be in {FIRST_APP_TYPE}..{MAX_MSG_TYPE}")
        payload = pack_message(msg_type, body)
        limit = self._hs.max_frame_bytes - 16
        if len(payload) > limit:
            raise ValueError(f"message of {len(payload)} bytes exceeds frame limit {limit}")
        return payload

    def send(self, peer_key: bytes, msg_type: int, body: Any) -> bool:
        """Queue a message for one peer; non-blocking, call from the event loop.

        Returns False if the peer is not connected or the message was dropped
        (or the connection closed) on overflow.  Raises ``ValueError`` or
        ``TypeError`` for a reserved or out-of-range type, an unserialisable
        body, or a body too large for a frame.
        """
        payload = self._payload(msg_type, body)
        conn = self._conns.get(peer_key)
        return conn is not None and self._enqueue(conn, payload)

    def broadcast(self, msg_type: int, body: Any) -> int:
        """Queue a message for every connected peer (encoded once); returns how many took it."""
        payload = self._payload(msg_type, body)
        return sum(self._enqueue(conn, payload) for conn in list(self._conns.values()))

    def _enqueue(self, conn: _Connection, payload: bytes) -> bool:
        if conn.offer(payload, self._queue_bytes):
            return True
        if self._overflow == "close":
            log.warning(
                "p2p send queue to %s overflowed (%d messages, %d bytes); closing connection",
                _short(conn.peer),
                conn.queue.qsize(),
                conn.queued_bytes,
            )
            self._drop(conn, "send queue overflow", graceful=False)
        else:
            conn.overflow_drops += 1
            if conn.overflow_drops == 1 or conn.overflow_drops % 1000 == 0:
                log.warning(
                    "p2p send queue to %s full; dropped %d message(s)",
                    _short(conn.peer),
                    conn.overflow_drops,
                )
        return False

    # ------------------------------------------------------------------ internals

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _fire(self, cb: OnPeer | None, key: bytes) -> None:
        if cb is None or self._closing:
            return
        try:
            res = cb(key)
        except Exception:
            log.exception("p2p peer callback failed")
            return
        if inspect.isawaitable(res):
            self._spawn(self._await_cb(res), "p2p-peer-callback")

    @staticmethod
    async def _await_cb(res: Awaitable[Any]) -> None:
        try:
            await res
        except Exception:
            log.exception("p2p peer callback failed")

    def _start_dialer(self, addr: PeerAddress) -> None:
        task = self._spawn(self._dial_loop(addr), f"p2p-dial-{_short(addr.public_key)}")
        self._dialers[addr.public_key] = task

    def _on_inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain (non-async) callback: runs inside connection_made, so every
        # accepted socket is tracked before any task switch can lose it.
        if self._closing or self._pending >= self._max_pending:
            if not self._closing:
                log.warning("p2p too many pending handshakes; refusing inbound connection")
            writer.transport.abort()
            return
        self._transports.add(writer.transport)
        self._pending += 1
        self._spawn(self._handle_inbound(reader, writer), "p2p-inbound")

    async def _handle_inbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            result = await respond(reader, writer, self._hs)
        except HandshakeError:
            return  # already logged and aborted by the handshake
        finally:
            self._pending -= 1
        self._adopt(result)

    async def _dial_once(self, addr: PeerAddress) -> None:
        async with asyncio.timeout(self._hs.timeout):
            reader, writer = await asyncio.open_connection(addr.host, addr.port)
        self._transports.add(writer.transport)
        result = await initiate(reader, writer, self._hs, expected_peer=addr.public_key)
        self._adopt(result)

    def _jitter(self, delay: float) -> float:
        return delay * (0.5 + random.random() / 2)

    async def _dial_loop(self, addr: PeerAddress) -> None:
        loop = asyncio.get_running_loop()
        delay = self._backoff_initial
        key = addr.public_key
        while True:
            conn = self._conns.get(key)
            if conn is not None:
                await conn.closed.wait()
                if loop.time() - conn.since >= self._backoff_max:
                    delay = self._backoff_initial  # it was stable: redial at once
                    continue
            else:
                try:
                    await self._dial_once(addr)
                    continue
                except HandshakeError:
                    pass  # logged by the handshake
                except (OSError, TimeoutError) as exc:
                    log.info(
                        "p2p dial %s:%d (%s) failed: %r", addr.host, addr.port, _short(key), exc
                    )
                except Exception:
                    log.exception("p2p dial %s:%d (%s) failed", addr.host, addr.port, _short(key))
            await asyncio.sleep(self._jitter(delay))
            delay = min(delay * 2, self._backoff_max)

    def _prefer_new(self, new: _Connection, old: _Connection) -> bool:
        if new.initiator_key == old.initiator_key:
            return True
        return new.initiator_key == min(self.identity.public_key, new.peer)

    def _adopt(self, result: HandshakeResult) -> None:
        conn = _Connection(result, self.identity.public_key, self._queue_size)
        if self._closing:
            conn.channel.abort()
            return
        old = self._conns.get(conn.peer)
        if old is not None:
            if not self._prefer_new(conn, old):
                log.debug("p2p keeping existing connection to %s; closing new", _short(conn.peer))
                conn.dropped = True
                conn.channel.close()
                return
            log.debug("p2p replacing connection to %s", _short(conn.peer))
            old.dropped = True
            for t in old.tasks:
                t.cancel()
            while not old.queue.empty():
                conn.offer(old.take(), self._queue_bytes)
            old.channel.close()
            old.closed.set()
        self._conns[conn.peer] = conn
        tag = _short(conn.peer)
        conn.tasks = [
            self._spawn(self._read_loop(conn), f"p2p-read-{tag}"),
            self._spawn(self._write_loop(conn), f"p2p-write-{tag}"),
        ]
        if old is None:
            log.info("p2p connected to %s (%s)", tag, "outbound" if conn.outbound else "inbound")
            self._fire(self._on_connected, conn.peer)

    def _drop(self, conn: _Connection, reason: str, *, graceful: bool) -> None:
        if conn.dropped:
            return
        conn.dropped = True
        current = asyncio.current_task()
        for t in conn.tasks:
            if t is not current:
                t.cancel()
        if graceful:
            conn.channel.close()
        else:
            conn.channel.abort()
        conn.closed.set()
        if self._conns.get(conn.peer) is conn:
            del self._conns[conn.peer]
            log.info("p2p disconnected from %s: %s", _short(conn.peer), reason)
            self._fire(self._on_disconnected, conn.peer)

    async def _deliver(self, peer: bytes, msg_type: int, body: Any) -> None:
        try:
            res = self._on_message(peer, msg_type, body)
            if inspect.isawaitable(res):
                await res
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "p2p on_message callback failed (type %d from %s)", msg_type, _short(peer)
            )

    async def _read_loop(self, conn: _Connection) -> None:
        reason = "reader stopped"
        graceful = False
        try:
            while True:
                async with asyncio.timeout(self._idle_timeout):
                    msg_type, body = await conn.channel.recv()
                if msg_type == MSG_PING:
                    continue
                if msg_type < FIRST_APP_TYPE:
                    raise FrameError(f"unexpected transport message type {msg_type}")
                await self._deliver(conn.peer, msg_type, body)
        except ChannelClosed:
            reason, graceful = "closed by peer", True
        except FrameError as exc:
            reason = f"bad frame: {exc}"
            log.warning("p2p closing connection to %s: %s", _short(conn.peer), reason)
        except TimeoutError:
            reason = f"idle for {self._idle_timeout}s"
        except OSError as exc:
            reason = f"transport error: {exc!r}"
        except Exception as exc:
            log.exception("p2p reader for %s failed", _short(conn.peer))
            reason = f"internal error: {exc!r}"
        finally:
            self._drop(conn, reason, graceful=graceful)

    async def _write_loop(self, conn: _Connection) -> None:
        reason = "writer stopped"
        try:
            while True:
                try:
                    async with asyncio.timeout(self._ping_interval):
                        payload = await conn.queue.get()
                    conn.queued_bytes -= len(payload)
                except TimeoutError:
                    payload = _PING_PAYLOAD
                await conn.channel.send_payload(payload)
        except (OSError, FrameError, ValueError) as exc:
            reason = f"send failed: {exc!r}"
        except Exception as exc:
            log.exception("p2p writer for %s failed", _short(conn.peer))
            reason = f"internal error: {exc!r}"
        finally:
            self._drop(conn, reason, graceful=False)
