"""FastAPI dependencies: the running node, its JSON-RPC handler and the other per-app objects."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request

from yilian.api.rpc import RpcHandler
from yilian.node.service import Node

T = TypeVar("T")


def app_state(request: Request, name: str, kind: type[T]) -> T:
    """The ``kind`` object ``create_app`` keeps on the app state as ``name`` (one per app)."""
    value: T = getattr(request.app.state, name)
    return value


def get_node(request: Request) -> Node:
    return app_state(request, "node", Node)


def get_rpc(request: Request) -> RpcHandler:
    return app_state(request, "rpc", RpcHandler)


NodeDep = Annotated[Node, Depends(get_node)]
RpcDep = Annotated[RpcHandler, Depends(get_rpc)]
