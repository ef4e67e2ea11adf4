"""FastAPI dependencies: the running node and its JSON-RPC handler, from app state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from yilian.api.rpc import RpcHandler
from yilian.node.service import Node


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def get_rpc(request: Request) -> RpcHandler:
    rpc: RpcHandler = request.app.state.rpc
    return rpc


NodeDep = Annotated[Node, Depends(get_node)]
RpcDep = Annotated[RpcHandler, Depends(get_rpc)]
