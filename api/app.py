"""The node's HTTP application: JSON-RPC, WebSocket subscriptions, health and metrics."""

from __future__ import annotations

from fastapi import FastAPI

from yilian.api.routes import health, rpc, ws
from yilian.api.rpc import RpcHandler
from yilian.node.service import Node


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
        title="yilian node",
        version="0.1.0",
        description="Ethereum JSON-RPC (POST /rpc, WebSocket /ws) and node health for a "
        "yilian consortium node.",
    )
    app.state.node = node
    app.state.rpc = RpcHandler(node)
    app.include_router(rpc.router)
    app.include_router(ws.router)
    app.include_router(health.router)
    return app
