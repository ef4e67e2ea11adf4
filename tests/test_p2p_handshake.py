"""p2p handshake over real TCP sockets on 127.0.0.1 (Ed25519 identities via PyNaCl)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any, TypeAlias

import msgpack
import pytest
from nacl.public import PrivateKey

from tests.p2p_identities import ed25519_identity, ed25519_verify
from yilian.node.p2p.handshake import (
    HandshakeConfig,
    HandshakeError,
    HandshakeResult,
    Identity,
    NetworkId,
    initiate,
    respond,
)

NET = NetworkId(chain_id=1337, genesis_hash=b"\x11" * 32)


def config(ident: Identity, members: list[bytes], **kw: Any) -> HandshakeConfig:
    kw.setdefault("timeout", 2.0)
    kw.setdefault("network", NET)
    return HandshakeConfig(identity=ident, verify=ed25519_verify, members=members, **kw)


Outcome: TypeAlias = HandshakeResult | HandshakeError


async def connect_to_responder(cfg: HandshakeConfig) -> tuple[
        asyncio.Server, asyncio.Future[Outcome], asyncio.StreamReader, asyncio.StreamWriter]:
    """A responder on an ephemeral port and a TCP connection to it: the server, the future
    of the responder's outcome, and the client's streams."""
    done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            done.set_result(await respond(r, w, cfg))
        except HandshakeError as exc:
            done.set_result(exc)

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    return server, done, r, w


async def run_pair(
    client_cfg: HandshakeConfig, server_cfg: HandshakeConfig, expected: bytes | None = None
) -> tuple[Outcome, Outcome]:
    server, server_done, r, w = await connect_to_responder(server_cfg)
    client: Outcome
    try:
        client = await initiate(r, w, client_cfg, expected_peer=expected)
    except HandshakeError as exc:
        client = exc
    srv = await asyncio.wait_for(server_done, 5)
    for res in (client, srv):
        if isinstance(res, HandshakeResult):
            res.channel.close()
    server.close()
    await server.wait_closed()
    return client, srv


def test_successful_handshake_and_channel() -> None:
    a, b = ed25519_identity(), ed25519_identity()
    members = [a.public_key, b.public_key]

    async def main() -> None:
        server_done: asyncio.Future[HandshakeResult] = asyncio.get_running_loop().create_future()

        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            res = await respond(r, w, config(b, members))
            server_done.set_result(res)

        server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        ca = await initiate(r, w, config(a, members), expected_peer=b.public_key)
        cb = await server_done
        assert ca.peer_public_key == b.public_key and ca.outbound
        assert cb.peer_public_key == a.public_key and not cb.outbound
        assert ca.transcript_hash == cb.transcript_hash
        await ca.channel.send(16, {"hello": b"world"})
        assert await cb.channel.recv() == (16, {"hello": b"world"})
        await cb.channel.send(17, [1, 2, 3])
        assert await ca.channel.recv() == (17, [1, 2, 3])
        ca.channel.close()
        cb.channel.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_sessions_use_fresh_keys() -> None:
    a, b = ed25519_identity(), ed25519_identity()
    members = [a.public_key, b.public_key]
    c1, _ = asyncio.run(run_pair(config(a, members), config(b, members)))
    c2, _ = asyncio.run(run_pair(config(a, members), config(b, members)))
    assert isinstance(c1, HandshakeResult) and isinstance(c2, HandshakeResult)
    assert c1.transcript_hash != c2.transcript_hash


def test_unknown_initiator_refused(caplog: pytest.LogCaptureFixture) -> None:
    a, b, intruder = ed25519_identity(), ed25519_identity(), ed25519_identity()
    members = [a.public_key, b.public_key]
    caplog.set_level(logging.WARNING)
    client, srv = asyncio.run(
        run_pair(config(intruder, [*members, intruder.public_key]), config(b, members))
    )
    assert isinstance(srv, HandshakeError) and "unknown key" in srv.reason
    assert isinstance(client, HandshakeError) and "refused by peer: unknown key" in client.reason
    assert "inbound handshake" in caplog.text and "not a member" in caplog.text


def test_unknown_responder_refused() -> None:
    a, b = ed25519_identity(), ed25519_identity()
    client, srv = asyncio.run(
        run_pair(config(a, [a.public_key]), config(b, [a.public_key, b.public_key]))
    )
    assert isinstance(client, HandshakeError) and "unknown key" in client.reason
    assert isinstance(srv, HandshakeError)


def test_expected_peer_mismatch_refused() -> None:
    a, b, c = ed25519_identity(), ed25519_identity(), ed25519_identity()
    members = [a.public_key, b.public_key, c.public_key]
    client, srv = asyncio.run(
        run_pair(config(a, members), config(b, members), expected=c.public_key)
    )
    assert isinstance(client, HandshakeError) and "unexpected peer key" in client.reason
    assert isinstance(srv, HandshakeError)


def test_bad_signature_refused() -> None:
    a, b = ed25519_identity(), ed25519_identity()
    members = [a.public_key, b.public_key]
    forger = Identity(a.public_key, lambda m: bytes(64))
    client, srv = asyncio.run(run_pair(config(forger, members), config(b, members)))
    assert isinstance(srv, HandshakeError) and "bad signature" in srv.reason
    assert isinstance(client, HandshakeError)

    forger_b = Identity(b.public_key, lambda m: a.sign(m))  # signs with the wrong key
    client, srv = asyncio.run(run_pair(config(a, members), config(forger_b, members)))
    assert isinstance(client, HandshakeError) and "bad signature" in client.reason


@pytest.mark.parametrize(
    "other",
    [
        NetworkId(chain_id=1338, genesis_hash=NET.genesis_hash),
        NetworkId(chain_id=NET.chain_id, genesis_hash=b"\x22" * 32),
    ],
)
def test_wrong_network_refused(other: NetworkId) -> None:
    a, b = ed25519_identity(), ed25519_identity()
    members = [a.public_key, b.public_key]
    client, srv = asyncio.run(run_pair(config(a, members, network=other), config(b, members)))
    assert isinstance(srv, HandshakeError) and "wrong network" in srv.reason
    assert isinstance(client, HandshakeError)


def test_connected_to_self_refused() -> None:
    a = ed25519_identity()
    client, srv = asyncio.run(run_pair(config(a, [a.public_key]), config(a, [a.public_key])))
    assert isinstance(client, HandshakeError) and "own key" in client.reason
    assert isinstance(srv, HandshakeError)


def test_member_predicate_and_raising_verify() -> None:
    a, b = ed25519_identity(), ed25519_identity()

    def boom(pk: bytes, m: bytes, s: bytes) -> bool:
        raise RuntimeError("verifier bug")

    cfg_a = dataclasses.replace(config(a, []), members=lambda k: True)
    cfg_b = dataclasses.replace(config(b, []), members=lambda k: True, verify=boom)
    _, srv = asyncio.run(run_pair(cfg_a, cfg_b))
    assert isinstance(srv, HandshakeError) and "bad signature" in srv.reason


async def raw_server_outcome(payload: bytes, cfg: HandshakeConfig, eof: bool = True) -> Outcome:
    """Send ``payload`` from a raw TCP client to a responder; return its outcome."""
    server, done, r, w = await connect_to_responder(cfg)
    w.write(payload)
    if eof:
        w.write_eof()
    res = await asyncio.wait_for(done, 5)
    with contextlib.suppress(ConnectionResetError):
        await asyncio.wait_for(r.read(), 5)  # reaches EOF: the server closed the connection
    w.close()
    server.close()
    await server.wait_closed()
    return res


def _hello(*fields: Any) -> bytes:
    body = msgpack.packb(list(fields), use_bin_type=True)
    return len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "oversized hello"),
        (b"\xff\xff\xff\xff", "oversized hello"),
        (b"\x00\x00\x00\x05abcde", "malformed hello"),
        (b"\x00\x00", "closed during handshake"),
        (_hello("yilian-p2p", 2, NET.chain_id, NET.genesis_hash, b"e" * 32), "version"),
        (_hello("other", 1, NET.chain_id, NET.genesis_hash, b"e" * 32), "wrong protocol"),
        (_hello("yilian-p2p", 1, NET.chain_id, NET.genesis_hash, b"e" * 31), "ephemeral"),
        (_hello("yilian-p2p", 1, NET.chain_id, NET.genesis_hash, bytes(32)), "invalid ephemeral"),
        (_hello("yilian-p2p", 1, "1337", NET.genesis_hash, b"e" * 32), "malformed hello"),
    ],
)
def test_malformed_hello_refused(payload: bytes, reason: str) -> None:
    b = ed25519_identity()
    res = asyncio.run(raw_server_outcome(payload, config(b, [b.public_key])))
    assert isinstance(res, HandshakeError) and reason in res.reason


def test_garbage_after_hello_refused() -> None:
    b = ed25519_identity()
    e = bytes(PrivateKey.generate().public_key)
    hello = _hello("yilian-p2p", 1, NET.chain_id, NET.genesis_hash, e)
    res = asyncio.run(raw_server_outcome(hello + b"\x00\x00\x00\x20" + b"x" * 32, config(b, [])))
    assert isinstance(res, HandshakeError) and "malformed frame" in res.reason
    res = asyncio.run(raw_server_outcome(hello + b"\x00\x10\x00\x00", config(b, [])))
    assert isinstance(res, HandshakeError) and "exceeds limit" in res.reason


def test_silent_peer_times_out() -> None:
    b = ed25519_identity()
    res = asyncio.run(raw_server_outcome(b"", config(b, [], timeout=0.3), eof=False))
    assert isinstance(res, HandshakeError) and "timeout" in res.reason

    async def silent_server() -> Outcome:
        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                await r.read()
            finally:
                w.close()

        server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        try:
            out: Outcome = await initiate(r, w, config(b, [], timeout=0.3))
        except HandshakeError as exc:
            out = exc
        server.close()
        await server.wait_closed()
        return out

    res = asyncio.run(silent_server())
    assert isinstance(res, HandshakeError) and "timeout" in res.reason
