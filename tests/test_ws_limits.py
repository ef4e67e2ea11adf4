"""WebSocket limits (issue 8, finding 8): connections per client address and in total,
subscriptions per connection, and what may wait to be sent per connection.

A client that never reads is simulated exactly: the endpoint is driven with a socket whose
``send_text`` never returns (as a real send does once the peer's TCP window is full), so
the test does not depend on kernel buffer sizes. Blocks are produced explicitly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from helpers import KEYS, make_client, make_node, produce_all, sign_put

from yilian.api.app import create_app
from yilian.api.routes.ws import CLOSE_TOO_SLOW, CLOSE_TRY_LATER, Outbox, websocket_rpc
from yilian.node.config import ConfigError, parse_config
from yilian.node.service import Node

pytestmark = pytest.mark.timeout(120)

QUEUE = 5
LIMITS = {"max_ws_queue": QUEUE, "max_ws_queue_bytes": 64 * 1024,
          "max_ws_connections": 4, "max_ws_connections_per_ip": 2,
          "max_ws_subscriptions": 3}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = make_node(tmp_path, config={"rpc": LIMITS})
    try:
        yield n
    finally:
        n.stop()


class FakeSocket:
    """What ``websocket_rpc`` uses of a starlette WebSocket; sends block after ``reads``."""

    def __init__(self, app: FastAPI, host: str = "10.0.0.1", reads: int = 0) -> None:
        self.app = app
        self.client = SimpleNamespace(host=host)
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reads = reads
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.never = asyncio.Event()

    def request(self, method: str, params: list[Any], req_id: int = 1) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "text": json.dumps(
            {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})})

    async def accept(self) -> None:
        pass

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        if len(self.sent) >= self.reads:
            await self.never.wait()  # the peer stopped reading
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason or "")


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_a_client_that_never_reads_its_answers_is_disconnected(node: Node) -> None:
    app = create_app(node)

    async def scenario() -> FakeSocket:
        sock = FakeSocket(app)
        for i in range(QUEUE * 4):
            sock.request("eth_chainId", [], i)
        await websocket_rpc(sock)  # type: ignore[arg-type]
        return sock

    sock = _run(scenario())
    assert sock.closed is not None and sock.closed[0] == CLOSE_TOO_SLOW, sock.closed
    assert "too slow" in sock.closed[1] and len(sock.closed[1].encode()) <= 123
    assert app.state.ws_limiter.total == 0


def test_a_subscriber_that_stops_reading_is_disconnected_and_unsubscribed(
        node: Node) -> None:
    app = create_app(node)
    listening = len(node.ledger._listeners)  # the node's own (liveness)

    async def scenario() -> tuple[FakeSocket, int]:
        sock = FakeSocket(app, reads=1)  # reads the subscription id, then nothing
        sock.request("eth_subscribe", ["newHeads"])
        task = asyncio.create_task(websocket_rpc(sock))  # type: ignore[arg-type]
        while not sock.sent:
            await asyncio.sleep(0.01)
        blocks = 0
        for nonce in range(QUEUE * 3):
            if task.done():
                break
            node.submit(sign_put(KEYS[0], nonce, b"k%d" % nonce, b"v"))
            await asyncio.to_thread(produce_all, node)
            blocks += 1
            await asyncio.sleep(0.01)
        await task
        return sock, blocks

    sock, blocks = _run(scenario())
    assert "result" in json.loads(sock.sent[0])
    assert sock.closed is not None and sock.closed[0] == CLOSE_TOO_SLOW, sock.closed
    # one notification in the stuck send, QUEUE waiting, the next one overflows
    assert blocks <= QUEUE + 3, blocks
    assert app.state.ws_limiter.total == 0
    assert len(node.ledger._listeners) == listening  # the connection no longer listens


def test_connections_are_capped_per_address_and_in_total(node: Node) -> None:
    app = create_app(node)

    async def scenario() -> list[FakeSocket]:
        hosts = ["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
        socks = [FakeSocket(app, host) for host in hosts]
        tasks = []
        for sock in socks:
            tasks.append(asyncio.create_task(websocket_rpc(sock)))  # type: ignore[arg-type]
            await asyncio.sleep(0.05)
        assert app.state.ws_limiter.total == 4
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return socks

    socks = _run(scenario())
    closed = [s.closed for s in socks]
    assert closed[:2] == [None, None]
    assert closed[2] is not None and closed[2][0] == CLOSE_TRY_LATER
    assert "max_ws_connections_per_ip" in closed[2][1]
    assert closed[3] is None and closed[4] is None  # other addresses: 4 open in total
    assert closed[5] is not None and closed[5][0] == CLOSE_TRY_LATER
    assert "rpc.max_ws_connections)" in closed[5][1]
    assert app.state.ws_limiter.total == 0  # every slot is given back


def test_subscriptions_per_connection_and_bad_unsubscribe_params(node: Node) -> None:
    with make_client(node) as client, client.websocket_connect("/ws") as ws:
        def ask(method: str, params: Any) -> dict[str, Any]:
            ws.send_text(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                     "params": params}))
            return dict(json.loads(ws.receive_text()))

        for _ in range(LIMITS["max_ws_subscriptions"]):
            assert ask("eth_subscribe", ["newHeads"])["result"].startswith("0x")
        err = ask("eth_subscribe", ["newHeads"])["error"]
        assert err["code"] == -32005 and "max_ws_subscriptions" in err["message"]
        for params in ([[1]], [{"a": 1}], [], [None], "x", [["0x1"]]):
            err = ask("eth_unsubscribe", params)["error"]
            assert err["code"] == -32602, (params, err)
        for params in ([], [["newHeads"]], ["logs", {"address": 5}], [{"x": 1}],
                       ["newHeads", {}]):
            assert ask("eth_subscribe", params)["error"]["code"] in (-32602, -32005)
        assert ask("eth_chainId", [])["result"].startswith("0x")  # still connected


def test_outbox_bounds_messages_and_bytes_but_passes_one_large_answer() -> None:
    box = Outbox(max_messages=10, max_bytes=1000)
    box.put("x" * 5000)  # a single large answer goes out when nothing else waits
    assert not box.overflowed.is_set() and box.take() == "x" * 5000
    box.put("a" * 600)
    box.put("b" * 600)  # would hold 1200 bytes
    assert box.overflowed.is_set() and box.size == 0 and box.take() is None
    box = Outbox(max_messages=3, max_bytes=10**6)
    for _ in range(3):
        box.put("m")
    assert not box.overflowed.is_set()
    box.put("m")
    assert box.overflowed.is_set()


@pytest.mark.parametrize("value", [0, -1, True, "5", 1.5, None])
def test_websocket_limits_in_the_config_are_strict(value: Any) -> None:
    for key in ("max_ws_connections", "max_ws_connections_per_ip", "max_ws_queue",
                "max_ws_queue_bytes", "call_timeout_ms", "batch_gas", "batch_timeout_ms"):
        with pytest.raises(ConfigError, match=key):
            parse_config({"rpc": {key: value}})
    assert parse_config({"rpc": {"max_ws_queue": 7}}).rpc.max_ws_queue == 7
