"""``yilian up`` fails clearly when its node's port is answered by another process.

The decoy is what a new user met: another network's node on the port ``up`` uses, so the
node just started cannot listen, yet the health wait is answered. ``up`` must notice that
the answer is not from the process it started (pid and start id in ``/healthz``).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from yilian.cli import launcher
from yilian.cli.launcher import free_port

pytestmark = pytest.mark.slow


class _Decoy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "name": "node-1", "chainId": 7460,
                           "pid": os.getpid(), "startId": "another-network",
                           "head": {"number": 12}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def decoy_network(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A generated single-node network whose RPC port a decoy server already answers."""
    data_dir = tmp_path / "net"
    network = launcher.init_local(data_dir, 1, free_port())
    port = urllib.parse.urlsplit(network["nodes"][0]["rpc"]).port
    assert port is not None
    server = ThreadingHTTPServer(("127.0.0.1", port), _Decoy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield data_dir, port
    finally:
        launcher.down(data_dir)
        server.shutdown()
        server.server_close()


def test_up_fails_when_another_process_answers_the_port(decoy_network: tuple[Path, int]
                                                        ) -> None:
    data_dir, port = decoy_network
    with pytest.raises(launcher.LauncherError) as err:
        launcher.up(data_dir)
    message = str(err.value)
    assert "port clash" in message and f"port {port}" in message, message
    assert "node-1" in message  # names who answered (from the decoy's /healthz)
    entry = launcher.read_network(data_dir)["nodes"][0]
    assert entry["pid"] is None  # nothing left half-started


def test_up_accepts_its_own_node(tmp_path: Path) -> None:
    """The check does not refuse the node ``up`` started: its pid and start id match."""
    data_dir = tmp_path / "net"
    try:
        network = launcher.up(data_dir, nodes=1, base_port=free_port())
        entry = network["nodes"][0]
        health = launcher._health(entry["rpc"])
        assert health is not None
        assert health["pid"] == entry["pid"]
        assert health["startId"] == (Path(entry["home"]) / launcher.START_ID_FILE
                                     ).read_text().strip()
    finally:
        launcher.down(data_dir)
