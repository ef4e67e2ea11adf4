"""The bridge between the consensus driver's thread and the p2p layer's asyncio loop.

The **p2p thread** runs an asyncio loop with the :class:`~yilian.node.p2p.peers.PeerManager`;
received messages are decoded there and handed to ``on_message`` (which must not block).
Any thread sends through :meth:`P2pBridge.send` / :meth:`P2pBridge.broadcast`, which hop
onto the loop; locally admitted transactions are batched for the peers by :meth:`gossip_tx`.

Invariants:

* The peer manager is touched only on the loop's thread.
* A message too large for a frame is logged and dropped, never raised into the caller.
* Before :meth:`start` and after :meth:`stop` every send is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from yilian.node import wire
from yilian.node.p2p.handshake import Identity, Members, NetworkId, Verify
from yilian.node.p2p.peers import PeerAddress, PeerManager
from yilian.node.tx_gossip import TxOutbox

log = logging.getLogger("yilian.consensus")

OnMessage = Callable[[bytes, int, Any], None]


def _guarded(fn: Callable[..., Any], *args: Any) -> None:
    """Run a p2p send on the loop; a message too large for a frame is logged, not raised."""
    try:
        fn(*args)
    except (ValueError, TypeError) as exc:
        log.error("message of type %s not sent: %s", args[-2] if len(args) > 1 else "?", exc)


class P2pBridge:
    def __init__(self, identity: Identity, network: NetworkId,
                 verify: Verify, members: Members, *,
                 peers: list[PeerAddress], listen: tuple[str, int], on_message: OnMessage,
                 on_peer_connected: Callable[[bytes], None]) -> None:
        self.identity = identity
        self.network = network
        self.verify = verify
        self.members = members
        self.peers_config = peers
        self.listen = listen
        self.on_message = on_message
        self.on_peer_connected = on_peer_connected
        self.pm: PeerManager | None = None
        self.last_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._txs = TxOutbox(self.broadcast)

    def start(self) -> None:
        """Start the p2p thread; returns once it listens (or failed to, see last_error)."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="p2p",
                                        daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self.pm is not None:
            fut = asyncio.run_coroutine_threadsafe(self.pm.close(), loop)
            try:
                fut.result(timeout=10)
            except Exception:
                log.exception("closing the p2p layer failed")
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self.pm = PeerManager(
            identity=self.identity, network=self.network, verify=self.verify,
            members=self.members, on_message=self.on_message, peers=self.peers_config,
            listen_host=self.listen[0], listen_port=self.listen[1],
            on_peer_connected=self.on_peer_connected,
            send_queue_size=4096, overflow="drop", max_frame_bytes=wire.MAX_FRAME_BYTES,
        )
        try:
            loop.run_until_complete(self.pm.start())
        except OSError as exc:
            self.last_error = f"p2p cannot listen on {self.listen}: {exc}"
            log.error(self.last_error)
        ready.set()
        loop.run_forever()
        loop.close()

    def connected_peers(self) -> int:
        return len(self.pm.connected_peers()) if self.pm is not None else 0

    def gossip_tx(self, raw: bytes) -> None:
        """Queue a locally admitted transaction for the peers (batched)."""
        loop = self._loop
        if loop is not None:
            self._txs.add(raw, loop)

    def broadcast(self, msg_type: int, body: Any) -> None:
        loop, pm = self._loop, self.pm
        if loop is None or pm is None:
            return
        if threading.current_thread() is self._thread:
            _guarded(pm.broadcast, msg_type, body)
        else:
            loop.call_soon_threadsafe(_guarded, pm.broadcast, msg_type, body)

    def send(self, peer: bytes, msg_type: int, body: Any) -> None:
        loop, pm = self._loop, self.pm
        if loop is not None and pm is not None:
            loop.call_soon_threadsafe(_guarded, pm.send, peer, msg_type, body)
