"""The node's HTTP application: JSON-RPC, WebSocket subscriptions, health and metrics.

``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) take their scripts and styles from the node
(``fastapi-offline`` bundles them; served under ``/static-offline-docs``), never from a
CDN, so they work on a machine without internet access. The OpenAPI document declares
the ``/v1`` error shape and signature headers (:mod:`yilian.api.openapi`).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from yilian.api.body_guard import BodyGuard
from yilian.api.errors import install_error_handlers
from yilian.api.openapi import ERROR_RESPONSES, install_openapi
from yilian.api.routes import (
    grants,
    health,
    keys,
    members,
    receipts,
    records,
    rpc,
    rpc_tokens,
    ws,
)
from yilian.api.routes.ws import ConnectionLimiter
from yilian.api.rpc import RpcHandler
from yilian.api.rpc_auth import Challenges, RpcAuth, load_token_key
from yilian.api.waiting import WaitBudget
from yilian.node.node_api import NodeAPI

DOCS_ASSETS_URL = "/static-offline-docs"


def create_app(node: NodeAPI) -> FastAPI:
    app = FastAPIOffline(
        title="yilian node",
        version="0.1.0",
        description="Ethereum JSON-RPC (POST /rpc, WebSocket /ws), the domain REST API "
        "(/v1: records, grants, receipts, members; requests signed with the caller's chain "
        "key) and node health for a yilian consortium node.",
        static_url=DOCS_ASSETS_URL,
    )
    app.state.node = node
    app.state.rpc = RpcHandler(node)
    app.state.waits = WaitBudget()
    app.state.ws_limiter = ConnectionLimiter(node.config.rpc)
    app.include_router(rpc.router)
    app.include_router(ws.router)
    app.include_router(health.router)
    app.state.token_key = load_token_key(node)
    app.state.challenges = Challenges(node.config.rpc_auth.challenge_ttl_s,
                                      node.config.rpc_auth.max_challenges)
    domain_routers = (records.router, keys.router, grants.router, receipts.router,
                      members.router, rpc_tokens.router)
    for domain_router in domain_routers:
        app.include_router(domain_router, responses=ERROR_RESPONSES)
    install_openapi(app, domain_routers)
    install_error_handlers(app)
    app.add_middleware(BodyGuard, max_bytes=node.config.rpc.max_request_bytes)
    # Outermost: a caller without a token is refused before its body is read.
    app.add_middleware(RpcAuth, node=node, key=app.state.token_key)
    return app
