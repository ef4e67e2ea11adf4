"""The node's HTTP application: JSON-RPC, WebSocket subscriptions, health and metrics."""

from __future__ import annotations

from fastapi import FastAPI

from yilian.api.auth import NonceStore
from yilian.api.body_guard import BodyGuard
from yilian.api.errors import install_error_handlers
from yilian.api.routes import grants, health, members, receipts, records, rpc, ws
from yilian.api.routes.ws import ConnectionLimiter
from yilian.api.rpc import RpcHandler
from yilian.node.service import Node


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
        title="yilian node",
        version="0.1.0",
        description="Ethereum JSON-RPC (POST /rpc, WebSocket /ws), the domain REST API "
        "(/v1: records, grants, receipts, members; requests signed with the caller's chain "
        "key) and node health for a yilian consortium node.",
    )
    app.state.node = node
    app.state.rpc = RpcHandler(node)
    app.state.nonces = NonceStore(node)
    app.state.ws_limiter = ConnectionLimiter(node.config.rpc)
    app.include_router(rpc.router)
    app.include_router(ws.router)
    app.include_router(health.router)
    for domain_router in (records.router, grants.router, receipts.router, members.router):
        app.include_router(domain_router)
    install_error_handlers(app)
    app.add_middleware(BodyGuard, max_bytes=node.config.rpc.max_request_bytes)
    return app
