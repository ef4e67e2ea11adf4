"""Which node a signed REST request is for: its *audience*.

Each node keeps its own store of used request nonces, so a signature that named no node
could be replayed once at every other node. A signed request therefore names the node
that is to serve it (see :mod:`yilian.protocol.signed_request`), and a node serves only
requests that name it:

* a center's node is named by its center's credit code (the member id of its center
  account, on chain), so a caller can name the custodian of a record without asking its
  node (a record shows its ``center``);
* a node without a center account (an observer, or a center account not registered yet)
  is ``node:<its configured name>`` (names are unique within a network's genesis).

Every node shows its own under ``audience`` in ``/healthz``.
"""

from __future__ import annotations

import re
from typing import Protocol

from yilian.node.config import NodeConfig
from yilian.node.domain import code_of
from yilian.node.key_types import ServiceError
from yilian.node.node_api import KeyServiceAPI

_NOT_ALLOWED = re.compile(r"[^0-9A-Za-z:._-]")


class NamedNode(Protocol):
    """What the audience is made of: the node's key service (if any) and configuration."""

    @property
    def key_service(self) -> KeyServiceAPI | None: ...

    @property
    def config(self) -> NodeConfig: ...


def request_audience(node: NamedNode) -> str:
    """This node's audience (stable while its center stays registered)."""
    if node.key_service is not None:
        try:
            return code_of(node.key_service.center_id())
        except ServiceError:
            pass  # not registered (yet): the node serves as a plain node
    return "node:" + _NOT_ALLOWED.sub("_", node.config.name)[:59]
