"""Run one node in the foreground: the node service plus its HTTP/WebSocket server."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from yilian.api.app import create_app
from yilian.cli.launcher import START_ID_FILE
from yilian.node.config import load_config
from yilian.node.diagnostics import start_from_env as start_diagnostics
from yilian.node.malloc_arenas import limit_arenas
from yilian.node.service import Node

CPU_SLOT_ENV = "YILIAN_NODE_CPU_SLOT"  # set by the launcher: the node's index in its network


def cpu_for(name: str, slot: int | None, cpus: list[int]) -> int:
    """The CPU a node keeps its threads on: round-robin by its launch ``slot`` (its index
    in the network, so N nodes on N CPUs get one each), or by a stable hash of its name for
    a node started by hand (no slot)."""
    if slot is not None:
        return cpus[slot % len(cpus)]
    return cpus[int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % len(cpus)]


def cpu_slot(value: str | None) -> int | None:
    """``YILIAN_NODE_CPU_SLOT`` parsed: None when unset, else a whole number >= 0."""
    if value is None or not value.strip():
        return None
    try:
        slot = int(value)
    except ValueError:
        slot = -1
    if slot < 0:
        raise ValueError(f"{CPU_SLOT_ENV}={value!r}: give the node's index in its network "
                         "(0, 1, 2, ...), or leave it unset")
    return slot


def _one_cpu(name: str) -> None:
    """Keep every thread of the node on one CPU (before any thread starts).

    The node's threads (HTTP workers, block producer) share one GIL, and py-evm, coincurve
    and plyvel release it around every short C call (each keccak, each signature
    recovery). With the threads on different CPUs each release hands the GIL to a thread
    spinning up on the other CPU and back: on 2 CPUs that ping-pong cost ~25% more CPU per
    transaction and halved the admission rate. On one CPU the handoffs are cheap.
    Several nodes on one machine spread over the CPUs round-robin by the slot the launcher
    gives each (:func:`cpu_for`; a hash of the name put 5 of 7 nodes on one CPU of two).
    Set YILIAN_NODE_CPUS=all to opt out.
    """
    if os.environ.get("YILIAN_NODE_CPUS") == "all" or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpu_for(name, cpu_slot(os.environ.get(CPU_SLOT_ENV)), cpus)})


def run_node(home: Path) -> None:
    """Start the node in ``home`` and serve until SIGINT/SIGTERM; then stop cleanly."""
    config = load_config(home)
    _one_cpu(config.name)
    limit_arenas()  # before the node's threads start: see yilian.node.malloc_arenas
    logging.basicConfig(
        level=config.log_level.upper(),
        format=f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s",
    )
    start_diagnostics(config.name)  # YILIAN_TRACEMALLOC: periodic memory snapshots
    node = Node(config, home)
    app = create_app(node)
    # ``/healthz`` answers this id and our pid, so ``yilian up`` can tell its node from
    # another process answering on the same port (see launcher._wait_healthy).
    start_id = home / START_ID_FILE
    app.state.start_id = start_id.read_text().strip() if start_id.exists() else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        node.start()
        (home / "node.pid").write_text(str(os.getpid()))
        try:
            yield
        finally:
            node.stop()
            (home / "node.pid").unlink(missing_ok=True)

    app.router.lifespan_context = lifespan
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.rpc_port, log_level="warning",
        ws_max_size=config.rpc.max_request_bytes, access_log=False,
        timeout_graceful_shutdown=5,
    ))
    server.run()
