"""FastAPI dependencies: the running node and the other per-app objects (the JSON-RPC
handler's own dependency is in ``api/routes/rpc.py``, so REST imports nothing of JSON-RPC)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request

from yilian.node.service import Node

T = TypeVar("T")


def app_state(request: Request, name: str, kind: type[T]) -> T:
    """The ``kind`` object ``create_app`` keeps on the app state as ``name`` (one per app)."""
    value: T = getattr(request.app.state, name)
    return value


def get_node(request: Request) -> Node:
    return app_state(request, "node", Node)


NodeDep = Annotated[Node, Depends(get_node)]
