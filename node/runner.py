"""Run one node in the foreground: the node service plus its HTTP/WebSocket server."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from yilian.node.config import load_config
from yilian.node.service import Node


def run_node(home: Path) -> None:
    """Start the node in ``home`` and serve until SIGINT/SIGTERM; then stop cleanly."""
    from yilian.api.app import create_app  # api imports node; keep node importable alone

    config = load_config(home)
    logging.basicConfig(
        level=config.log_level.upper(),
        format=f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s",
    )
    node = Node(config, home)
    app = create_app(node)

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
