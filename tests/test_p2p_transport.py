"""PeerManager over real asyncio TCP on 127.0.0.1 (ephemeral ports, Ed25519 identities)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from tests.p2p_identities import ed25519_identity, ed25519_verify
from yilian.node.p2p.frames import MSG_HS_AUTH
from yilian.node.p2p.handshake import HandshakeConfig, Identity, NetworkId, initiate
from yilian.node.p2p.peers import PeerAddress, PeerManager

NET = NetworkId(chain_id=7, genesis_hash=b"\x42" * 32)
APP = 16


class Node:
    """A PeerManager plus an inbox of everything its on_message received."""

    def __init__(
        self,
        ident: Identity,
        members: Iterable[bytes],
        *,
        network: NetworkId = NET,
        port: int = 0,
        peers: Iterable[PeerAddress] = (),
        async_handler: bool = False,
        **kw: Any,
    ) -> None:
        self.ident = ident
        self.key = ident.public_key
        self.inbox: list[tuple[bytes, int, Any]] = []
        self.connected: list[bytes] = []
        self.disconnected: list[bytes] = []
        handler: Callable[[bytes, int, Any], Awaitable[None] | None]
        handler = self._on_async if async_handler else self._on
        params: dict[str, Any] = {
            "backoff_initial": 0.05,
            "backoff_max": 0.4,
            "handshake_timeout": 2.0,
            "ping_interval": 0.5,
            "idle_timeout": 5.0,
        }
        params.update(kw)
        self.mgr = PeerManager(
            identity=ident,
            network=network,
            verify=ed25519_verify,
            members=set(members),
            on_message=handler,
            peers=peers,
            listen_port=port,
            on_peer_connected=self.connected.append,
            on_peer_disconnected=self.disconnected.append,
            **params,
        )

    def _on(self, peer: bytes, msg_type: int, body: Any) -> None:
        if body == "boom":
            raise RuntimeError("handler bug")  # must not close anything
        self.inbox.append((peer, msg_type, body))

    async def _on_async(self, peer: bytes, msg_type: int, body: Any) -> None:
        await asyncio.sleep(0)
        self._on(peer, msg_type, body)

    @property
    def addr(self) -> PeerAddress:
        host, port = self.mgr.listen_address
        return PeerAddress(host, port, self.key)

    def got(self, peer: bytes, msg_type: int, body: Any) -> bool:
        return (peer, msg_type, body) in self.inbox


async def wait_until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.02)


def consistent(a: Node, b: Node) -> bool:
    """Both ends have a connection to each other and it is the same TCP connection."""
    ia, ib = a.mgr.connection_info(b.key), b.mgr.connection_info(a.key)
    return (
        ia is not None
        and ib is not None
        and ia.local_address == ib.remote_address
        and ia.remote_address == ib.local_address
        and ia.outbound != ib.outbound
    )


async def wait_mesh(nodes: list[Node], timeout: float = 5.0) -> None:
    pairs = [(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1 :]]
    await wait_until(lambda: all(consistent(a, b) for a, b in pairs), timeout, "full mesh")
    await asyncio.sleep(0.2)  # let any duplicate dial in flight resolve
    await wait_until(lambda: all(consistent(a, b) for a, b in pairs), timeout, "stable mesh")


async def start_mesh(nodes: list[Node]) -> None:
    for n in nodes:
        await n.mgr.start()
    for n in nodes:
        for m in nodes:
            if m is not n:
                n.mgr.add_peer(m.addr)
    await wait_mesh(nodes)


async def close_all(nodes: list[Node]) -> None:
    await asyncio.gather(*(n.mgr.close() for n in nodes))
    await asyncio.sleep(0)
    pending = asyncio.all_tasks() - {asyncio.current_task()}
    assert not pending, f"tasks left behind: {pending}"


async def exchange(nodes: list[Node], tag: str) -> None:
    """Every node broadcasts and sends one direct message to every other; all arrive."""
    for n in nodes:
        assert n.mgr.broadcast(APP, {"from": n.key, "tag": tag}) == len(nodes) - 1
        for m in nodes:
            if m is not n:
                assert n.mgr.send(m.key, APP + 1, [tag, n.key, m.key])
    await wait_until(
        lambda: all(
            n.got(m.key, APP, {"from": m.key, "tag": tag})
            and n.got(m.key, APP + 1, [tag, m.key, n.key])
            for n in nodes
            for m in nodes
            if m is not n
        ),
        what=f"exchange {tag}",
    )


def members_of(idents: list[Identity]) -> list[bytes]:
    return [i.public_key for i in idents]


def test_full_mesh_exchanges_messages_both_ways() -> None:
    idents = [ed25519_identity() for _ in range(4)]
    members = members_of(idents)

    async def main() -> None:
        nodes = [Node(i, members, async_handler=(k % 2 == 1)) for k, i in enumerate(idents)]
        await start_mesh(nodes)
        for n in nodes:
            assert n.mgr.connected_peers() == sorted(m.key for m in nodes if m is not n)
        await exchange(nodes, "one")
        # a raising on_message callback neither closes the connection nor stops delivery
        assert nodes[0].mgr.send(nodes[1].key, APP, "boom")
        await exchange(nodes, "two")
        assert len(nodes[1].mgr.connected_peers()) == 3
        # body types survive: bytes stay bytes, str stays str, tuples become lists
        nodes[2].mgr.send(nodes[3].key, 999, {"b": b"\x00\xff", "s": "ü", "t": (1, 2)})
        await wait_until(
            lambda: nodes[3].got(nodes[2].key, 999, {"b": b"\x00\xff", "s": "ü", "t": [1, 2]})
        )
        for n in nodes:
            assert sorted(set(n.connected)) == sorted(m.key for m in nodes if m is not n)
        await close_all(nodes)

    asyncio.run(main())


def test_send_api_contract() -> None:
    a_id, b_id = ed25519_identity(), ed25519_identity()
    members = members_of([a_id, b_id])

    async def main() -> None:
        a, b = Node(a_id, members, max_frame_bytes=1024), Node(b_id, members)
        await start_mesh([a, b])
        for bad_type in (0, 3, 15, 65536, -1):
            with pytest.raises(ValueError):
                a.mgr.send(b.key, bad_type, None)
        with pytest.raises(ValueError, match="exceeds frame limit"):
            a.mgr.send(b.key, APP, b"x" * 2000)
        with pytest.raises(TypeError):
            a.mgr.broadcast(APP, object())
        assert a.mgr.send(b"\x01" * 32, APP, None) is False  # not connected
        assert a.mgr.send(b.key, 65535, None)
        await wait_until(lambda: b.got(a.key, 65535, None))
        await close_all([a, b])

    asyncio.run(main())


def test_unknown_key_refused_at_handshake(caplog: pytest.LogCaptureFixture) -> None:
    idents = [ed25519_identity() for _ in range(3)]
    members = members_of(idents)
    intruder_id = ed25519_identity()
    caplog.set_level(logging.INFO)

    async def main() -> None:
        nodes = [Node(i, members) for i in idents]
        await start_mesh(nodes)
        intruder = Node(intruder_id, [*members, intruder_id.public_key])
        await intruder.mgr.start()
        for n in nodes:
            intruder.mgr.add_peer(n.addr)
        await wait_until(lambda: caplog.text.count("is not a member") >= 6, what="refusals")
        assert intruder.mgr.connected_peers() == []
        assert intruder.connected == []
        for n in nodes:
            assert intruder.key not in n.mgr.connected_peers()
            assert intruder.key not in n.connected
        await exchange(nodes, "despite intruder")
        await close_all([*nodes, intruder])

    asyncio.run(main())
    assert "inbound handshake" in caplog.text
    assert "refused by peer: unknown key" in caplog.text


def test_wrong_network_refused(caplog: pytest.LogCaptureFixture) -> None:
    idents = [ed25519_identity() for _ in range(3)]
    members = members_of(idents)
    caplog.set_level(logging.WARNING)

    async def main() -> None:
        a, b = Node(idents[0], members), Node(idents[1], members)
        await start_mesh([a, b])
        other_genesis = NetworkId(chain_id=NET.chain_id, genesis_hash=b"\x43" * 32)
        stranger = Node(idents[2], members, network=other_genesis)
        other_chain = Node(idents[2], members, network=NetworkId(8, NET.genesis_hash))
        for s in (stranger, other_chain):
            await s.mgr.start()
            s.mgr.add_peer(a.addr)
        await wait_until(lambda: "genesis hash" in caplog.text and "chain id 8 != 7" in caplog.text)
        assert stranger.mgr.connected_peers() == other_chain.mgr.connected_peers() == []
        assert a.mgr.connected_peers() == [b.key]
        await exchange([a, b], "still fine")
        await close_all([a, b, stranger, other_chain])

    asyncio.run(main())


async def assert_disconnected(reader: asyncio.StreamReader, timeout: float = 3.0) -> None:
    """The server side closes: reading reaches EOF (or a reset) without us closing."""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(65536):
                pass


def test_bad_clients_disconnected_node_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    idents = [ed25519_identity() for _ in range(4)]
    members = members_of(idents)  # idents[3] is a member with no running node: our raw client
    caplog.set_level(logging.WARNING)

    async def main() -> None:
        nodes = [Node(i, members) for i in idents[:3]]
        await start_mesh(nodes)
        a = nodes[0]
        host, port = a.mgr.listen_address

        async def raw(payload: bytes) -> None:
            r, w = await asyncio.open_connection(host, port)
            w.write(payload)
            await assert_disconnected(r)
            w.close()

        await raw(b"\x16\x03\x01\x02\x00garbage-that-is-not-our-protocol" * 10)
        await raw(b"\xff\xff\xff\xff")  # oversized length prefix instead of hello
        await raw(b"\x00\x00\x00\x08" + b"\x00" * 8)  # well-sized nonsense

        cfg = HandshakeConfig(
            identity=idents[3], network=NET, verify=ed25519_verify, members=set(members)
        )

        async def authenticated(after: Callable[[Any], bytes]) -> None:
            r, w = await asyncio.open_connection(host, port)
            res = await initiate(r, w, cfg, expected_peer=a.key)
            await res.channel.send(APP, "legit")  # a valid frame is delivered first
            await wait_until(lambda: a.got(idents[3].public_key, APP, "legit"))
            a.inbox.clear()
            w.write(after(res.channel.codec))
            w.write_eof()  # half-close: the server must still close on its own
            await assert_disconnected(r)
            w.close()

        def tampered(codec: Any) -> bytes:
            frame = bytearray(codec.seal(APP, "evil"))
            frame[-1] ^= 0x01
            return bytes(frame)

        await authenticated(tampered)
        await authenticated(lambda codec: b"\x7f\xff\xff\xff")  # oversized after handshake
        await authenticated(lambda codec: codec.seal_payload(b"\xc1"))  # bad msgpack
        await authenticated(lambda codec: codec.seal(MSG_HS_AUTH, None))  # reserved type
        await authenticated(lambda codec: codec.seal(APP, "x")[:-3])  # truncated, then EOF

        assert "authentication failed" in caplog.text
        assert "exceeds limit" in caplog.text
        assert "undecodable payload" in caplog.text
        assert "unexpected transport message type" in caplog.text
        assert not any(n.got(idents[3].public_key, APP, "evil") for n in nodes)
        await exchange(nodes, "after attacks")
        for n in nodes:
            assert len(n.mgr.connected_peers()) == 2
        await close_all(nodes)

    asyncio.run(main())


def test_restarted_peer_is_redialled() -> None:
    idents = [ed25519_identity() for _ in range(3)]
    members = members_of(idents)

    async def main() -> None:
        a, b, c = (Node(i, members) for i in idents)
        await start_mesh([a, b, c])
        c_port = c.addr.port
        await c.mgr.close()
        await wait_until(lambda: c.key not in a.mgr.connected_peers() + b.mgr.connected_peers())
        assert c.key in a.disconnected and c.key in b.disconnected
        await exchange([a, b], "while c is down")
        await asyncio.sleep(0.5)  # a and b fail to dial c a few times (backoff)
        # c comes back on the same port and dials nobody: a and b must reconnect to it
        c2 = Node(idents[2], members, port=c_port)
        await c2.mgr.start()
        await wait_mesh([a, b, c2])
        assert not c2.mgr.connection_info(a.key).outbound  # type: ignore[union-attr]
        assert not c2.mgr.connection_info(b.key).outbound  # type: ignore[union-attr]
        await exchange([a, b, c2], "after restart")
        await close_all([a, b, c2])

    asyncio.run(main())


def test_simultaneous_dial_leaves_one_connection() -> None:
    async def main() -> None:
        for _ in range(5):
            idents = [ed25519_identity(), ed25519_identity()]
            members = members_of(idents)
            a, b = Node(idents[0], members), Node(idents[1], members)
            await a.mgr.start()
            await b.mgr.start()
            a.mgr.add_peer(b.addr)  # both dialers start in the same loop iteration
            b.mgr.add_peer(a.addr)
            await wait_mesh([a, b])
            await asyncio.sleep(0.3)
            assert consistent(a, b)
            assert a.connected == [b.key] and b.connected == [a.key]
            assert a.disconnected == [] and b.disconnected == []
            await exchange([a, b], "simul")
            await close_all([a, b])

    asyncio.run(main())


def test_tie_break_is_deterministic() -> None:
    """Unit check of the rule both ends apply to a duplicate connection."""
    lo, hi = sorted([b"\x01" * 32, b"\x02" * 32])

    class C:
        def __init__(self, initiator: bytes, peer: bytes) -> None:
            self.initiator_key = initiator
            self.peer = peer

    def prefer_new(own: bytes, new: C, old: C) -> bool:
        mgr = PeerManager.__new__(PeerManager)
        mgr.identity = Identity(own, lambda m: b"")
        return mgr._prefer_new(new, old)  # type: ignore[arg-type]

    # lo's view and hi's view of the same two connections agree on the survivor
    assert prefer_new(lo, C(lo, hi), C(hi, hi)) is True
    assert prefer_new(hi, C(lo, lo), C(hi, lo)) is True
    assert prefer_new(lo, C(hi, hi), C(lo, hi)) is False
    assert prefer_new(hi, C(hi, lo), C(lo, lo)) is False
    # same dialler on both: the newer connection wins (the old one is stale)
    assert prefer_new(lo, C(hi, hi), C(hi, hi)) is True


def test_send_queue_overflow(caplog: pytest.LogCaptureFixture) -> None:
    idents = [ed25519_identity() for _ in range(2)]
    members = members_of(idents)
    caplog.set_level(logging.WARNING)

    async def main() -> None:
        a = Node(idents[0], members, send_queue_size=2, overflow="drop")
        b = Node(idents[1], members, send_queue_size=2)
        await start_mesh([a, b])
        # no await in between: the writer task cannot drain, so the queue overflows
        assert [a.mgr.send(b.key, APP, i) for i in range(4)] == [True, True, False, False]
        assert "dropped 1 message" in caplog.text
        await wait_until(lambda: b.got(a.key, APP, 1))
        assert [x[2] for x in b.inbox] == [0, 1]
        assert a.mgr.connected_peers() == [b.key]
        # overflow="close": the connection is closed (logged) and then re-established
        assert [b.mgr.send(a.key, APP, i) for i in range(3)] == [True, True, False]
        assert "overflowed" in caplog.text
        assert b.mgr.connected_peers() == []
        await wait_mesh([a, b])
        await exchange([a, b], "after overflow")
        await close_all([a, b])

    asyncio.run(main())


def test_idle_connection_closed_and_keepalive_holds() -> None:
    idents = [ed25519_identity() for _ in range(3)]
    members = members_of(idents)

    async def main() -> None:
        a, b = (Node(i, members, ping_interval=0.1, idle_timeout=0.4) for i in idents[:2])
        await start_mesh([a, b])
        await asyncio.sleep(1.0)  # well past idle_timeout: pings keep it alive
        assert a.disconnected == [] and b.disconnected == []
        # an authenticated peer that goes silent is closed after idle_timeout
        host, port = a.mgr.listen_address
        cfg = HandshakeConfig(
            identity=idents[2], network=NET, verify=ed25519_verify, members=set(members)
        )
        r, w = await asyncio.open_connection(host, port)
        await initiate(r, w, cfg, expected_peer=a.key)
        await wait_until(lambda: idents[2].public_key in a.mgr.connected_peers())
        await assert_disconnected(r, timeout=2.0)
        w.close()
        await wait_until(lambda: idents[2].public_key in a.disconnected)
        await close_all([a, b])

    asyncio.run(main())


def test_close_cancels_pending_dials_and_handshakes() -> None:
    idents = [ed25519_identity() for _ in range(2)]
    members = members_of(idents)

    async def main() -> None:
        # a silent server: dials to it hang in the handshake until close()
        async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                with contextlib.suppress(Exception):
                    await r.read()
            finally:
                w.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        a = Node(idents[0], members, handshake_timeout=30.0)
        a.mgr.add_peer(PeerAddress("127.0.0.1", port, idents[1].public_key))
        a.mgr.add_peer(PeerAddress("127.0.0.1", 1, b"\x09" * 32))  # nothing listens there
        await a.mgr.start()
        # and an inbound connection stuck in the handshake
        r, w = await asyncio.open_connection(*a.mgr.listen_address)
        await asyncio.sleep(0.2)
        await a.mgr.close()
        await a.mgr.close()  # idempotent
        await assert_disconnected(r)
        w.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        assert not pending, pending

    asyncio.run(main())
