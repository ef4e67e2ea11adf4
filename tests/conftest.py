"""Shared fixtures: real node processes on 127.0.0.1, always stopped afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yilian.cli import launcher
from yilian.cli.launcher import free_port


class LocalNetwork:
    """A local network started with the real CLI machinery (``yilian up``) in a temp dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.info: dict[str, Any] = launcher.up(data_dir, nodes=1, base_port=free_port())

    @property
    def rpc(self) -> str:
        return str(self.info["nodes"][0]["rpc"])

    @property
    def ws(self) -> str:
        return str(self.info["nodes"][0]["ws"])

    @property
    def pid(self) -> int:
        return int(json.loads((self.data_dir / "network.json").read_text())["nodes"][0]["pid"])

    @property
    def home(self) -> Path:
        return Path(self.info["nodes"][0]["home"])

    def key(self, i: int = 0) -> str:
        return str(self.info["accounts"][i]["privateKey"])

    def address(self, i: int = 0) -> str:
        return str(self.info["accounts"][i]["address"])

    def restart(self) -> None:
        """``yilian up`` again: restarts stopped nodes, keeps their data."""
        self.info = launcher.up(self.data_dir)

    def stop(self) -> None:
        launcher.down(self.data_dir)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """One single-validator network per test module."""
    net = LocalNetwork(tmp_path_factory.mktemp("net"))
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture
def fresh_network(tmp_path: Path) -> Iterator[LocalNetwork]:
    """A network of its own, for tests that kill or restart the node."""
    net = LocalNetwork(tmp_path / "net")
    try:
        yield net
    finally:
        net.stop()


# The fast lane (`pytest -m "not slow"`) runs no node processes. Tests that start them are
# marked here in one place: by the fixtures that start a network, and by the modules whose
# tests start nodes themselves (launcher.up, consortium helpers, spawned node processes).
_PROCESS_FIXTURES = frozenset({"network", "fresh_network"})
_PROCESS_MODULES = frozenset({
    "test_consortium", "test_crash_recovery", "test_other_client", "test_records_e2e",
    "test_records_sm", "test_web3_e2e",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if _PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())) or (
                module in _PROCESS_MODULES):
            item.add_marker(pytest.mark.slow)
