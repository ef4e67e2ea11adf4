"""``GET /healthz``, ``GET /readyz`` and ``GET /metrics``.

These are ``async`` routes that do a few in-memory and LevelDB reads on the event loop,
so they never queue behind requests waiting in the thread pool. ``/healthz`` is liveness:
200 while the process serves, with ``status`` ``ok``, ``degraded`` (a block failed to
build) or ``stalled`` (see :mod:`yilian.node.liveness`) and the reasons. ``/readyz`` is
readiness for load balancers: 503 while the chain is stalled, since writes sent here
cannot commit then.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from yilian.api.deps import NodeDep
from yilian.node.audience import request_audience
from yilian.node.diagnostics import memory_figures
from yilian.node.node_api import NodeAPI

router = APIRouter(tags=["health"])


def _health(node: NodeAPI, request: Request) -> dict[str, Any]:
    head = node.core.head()
    chain = node.liveness.check()
    status = ("stalled" if chain.stalled else
              "ok" if node.last_block_error is None else "degraded")
    return {
        "status": status,
        "chain": chain.json(),
        "name": node.config.name,
        # who answers: ``yilian up`` checks both against the process it started
        "pid": os.getpid(),
        "startId": getattr(request.app.state, "start_id", None),
        "chainId": node.genesis.chain_id,
        "suite": node.genesis.suite,
        "center": None if node.key_service is None else node.key_service.account.checksum,
        "audience": request_audience(node),  # what signed /v1 requests to this node name
        "head": {"number": head.block_number, "hash": "0x" + head.hash.hex(),
                 "stateRoot": "0x" + head.state_root.hex(), "timestamp": head.timestamp},
        "mempool": len(node.mempool),
        "uptimeSeconds": round(time.time() - node.started_at, 1),
        "lastBlockError": node.last_block_error,
        "consensus": None if node.consensus is None else {
            **node.consensus.status().__dict__, "lastError": node.consensus.last_error},
    }


@router.get("/healthz", summary="Liveness, head and chain progress of this node")
async def healthz(node: NodeDep, request: Request) -> dict[str, Any]:
    return _health(node, request)


@router.get("/readyz", summary="Ready to commit writes: 503 while the chain is stalled",
            responses={503: {"description": "the chain is stalled (no quorum, or no commit "
                             "while transactions wait); the body says why"}})
async def readyz(node: NodeDep, request: Request) -> JSONResponse:
    health = _health(node, request)
    return JSONResponse(health, status_code=503 if health["chain"]["stalled"] else 200)


@router.get("/metrics", response_class=PlainTextResponse,
            summary="Prometheus text metrics")
async def metrics(node: NodeDep) -> str:
    head = node.core.head()
    lines = [
        "# TYPE yilian_head_number gauge",
        f"yilian_head_number {head.block_number}",
        "# TYPE yilian_mempool_size gauge",
        f"yilian_mempool_size {len(node.mempool)}",
        "# TYPE yilian_uptime_seconds gauge",
        f"yilian_uptime_seconds {time.time() - node.started_at:.1f}",
    ]
    figures = memory_figures()
    leveldb = node.leveldb_memory()
    if leveldb is not None:
        figures["leveldb_memory"] = leveldb
    for name, value in sorted(figures.items()):
        metric = f"yilian_{name}" if name.endswith("blocks") else f"yilian_{name}_bytes"
        lines += [f"# TYPE {metric} gauge", f"{metric} {value}"]
    return "\n".join(lines) + "\n"
