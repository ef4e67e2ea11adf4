"""FastAPI dependencies: the running node and the other per-app objects (the JSON-RPC
handler's own dependency is in ``api/routes/rpc.py``, so REST imports nothing of JSON-RPC)."""

from __future__ import annotations

from typing import Annotated, TypeVar, cast

from fastapi import Depends, Request

from yilian.node.node_api import NodeAPI

T = TypeVar("T")


def app_state(request: Request, name: str, kind: type[T]) -> T:
    """The ``kind`` object ``create_app`` keeps on the app state as ``name`` (one per app)."""
    value: T = getattr(request.app.state, name)
    return value


def get_node(request: Request) -> NodeAPI:
    """The node this app serves, as the API sees it (:class:`yilian.node.node_api.NodeAPI`)."""
    return cast(NodeAPI, request.app.state.node)


NodeDep = Annotated[NodeAPI, Depends(get_node)]
