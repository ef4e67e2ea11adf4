"""``GET /metrics``: Prometheus gauges, including where the node's memory is.

The memory gauges exist to find growth in a long-running node (the soak benchmark of
hardening finding 10): resident anonymous memory vs mapped files, glibc's bytes in use vs
free in its arenas (fragmentation), Python's allocated blocks and LevelDB's own estimate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.helpers import make_client, make_node
from yilian.node.diagnostics import memory_figures
from yilian.node.service import Node


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    node: Node = make_node(tmp_path_factory.mktemp("metrics"))
    try:
        with make_client(node) as c:
            yield c
    finally:
        node.stop()


def _gauges(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            out[name] = float(value)
    return out


def test_metrics_are_prometheus_gauges_with_a_type_line_each(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    gauges = _gauges(r.text)
    for name in gauges:
        assert f"# TYPE {name} gauge" in r.text
    assert gauges["yilian_head_number"] == 0 and gauges["yilian_mempool_size"] == 0


def test_metrics_say_where_the_memory_is(client: TestClient) -> None:
    gauges = _gauges(client.get("/metrics").text)
    for name in ("yilian_resident_anon_bytes", "yilian_resident_file_bytes",
                 "yilian_malloc_in_use_bytes", "yilian_malloc_free_bytes",
                 "yilian_leveldb_memory_bytes"):
        assert gauges[name] > 0, name
    assert gauges["yilian_python_allocated_blocks"] > 10_000
    # LevelDB's estimate includes its (empty) memtable, far below the process's heap
    assert gauges["yilian_leveldb_memory_bytes"] < gauges["yilian_resident_anon_bytes"]


def test_memory_figures_follow_allocations() -> None:
    before = memory_figures()
    hold = [bytearray(1024) for _ in range(20_000)]  # ~20 MB through malloc, ~20k blocks
    after = memory_figures()
    assert after["python_allocated_blocks"] - before["python_allocated_blocks"] >= 19_000
    assert after["malloc_in_use"] - before["malloc_in_use"] >= 15 * 2**20
    # (resident memory need not grow: a process that freed more before reuses its pages)
    assert after["resident_anon"] > 0 and after["resident_file"] > 0
    del hold


def test_memory_figures_without_proc_or_glibc(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    from yilian.node import diagnostics

    monkeypatch.setattr(diagnostics, "_mallinfo2", lambda: None)
    monkeypatch.setattr(diagnostics, "Path", lambda _: tmp_path / "missing")
    assert set(diagnostics.memory_figures()) == {"python_allocated_blocks"}
