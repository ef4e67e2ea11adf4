"""The benchmarks' own local networks: start one in a directory, stop it for sure.

:func:`stop_network` leaves no node process of the directory behind, even one
``launcher.down`` could not stop; a pid is only signalled while its command line still
names the directory (pids are reused).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yilian.bench.measure import proc_cpu
from yilian.cli import launcher


def _pid_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (reads /proc, not the command line)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def start_network(data_dir: Path, timeout: float = 60.0, nodes: int = 1,
                  env: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """``launcher.up`` a fresh network of ``nodes`` node processes in ``data_dir``: one
    node is a single validator, more a BFT consortium of that many validators. ``env``
    adds environment variables per node name (e.g. ``{"center-1": {"MALLOC_ARENA_MAX":
    "2"}}``, to compare two settings side by side in one run). Returns network.json."""
    # A consortium node uses two ports (RPC, p2p); launcher.up wants them consecutive.
    base = launcher.free_port() if nodes == 1 else launcher.free_port_range(2 * nodes)
    extra = env or {}

    def spawner(entry: dict[str, Any]) -> int:
        return launcher.spawn(entry, env=extra.get(entry["name"]))

    return launcher.up(data_dir, nodes=nodes, base_port=base, timeout=timeout,
                       spawner=spawner)


def _own_node(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is still a node of ``data_dir`` (not a reused pid)."""
    cmdline = b""
    for _ in range(20):  # empty while the process is still inside execve
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        if cmdline:
            break
        time.sleep(0.1)
    return str(data_dir.resolve()).encode() in cmdline


def stop_network(data_dir: Path) -> None:
    """``launcher.down``, then make sure the node processes this bench started are gone.

    With several nodes every one gets SIGTERM first, so they shut down in parallel
    (``launcher.down`` alone stops them one after the other)."""
    try:
        pids = [int(e["pid"]) for e in launcher.read_network(data_dir)["nodes"]
                if e.get("pid")]
    except (launcher.LauncherError, KeyError, TypeError, ValueError):
        pids = []
    if len(pids) > 1:
        for pid in pids:
            if _pid_running(pid) and _own_node(pid, data_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
    launcher.down(data_dir)
    for pid in pids:
        if not _pid_running(pid) or not _own_node(pid, data_dir):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _pid_running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_running(pid):
            os.kill(pid, signal.SIGKILL)


def pid_from_file(path: Path, rpc_url: str) -> int | None:
    """The pid network.json records for the node serving ``rpc_url``, if it runs here."""
    try:
        nodes = json.loads(path.read_text()).get("nodes", [])
    except (OSError, ValueError, AttributeError):
        return None
    for entry in nodes:
        if isinstance(entry, dict) and entry.get("rpc") == rpc_url and entry.get("pid"):
            pid = int(entry["pid"])
            return pid if proc_cpu(pid) is not None else None
    return None
