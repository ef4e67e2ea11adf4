"""``GET /healthz`` and ``GET /metrics``."""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from yilian.api.deps import NodeDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and head of this node")
def healthz(node: NodeDep, request: Request) -> dict[str, Any]:
    head = node.core.head()
    return {
        "status": "ok" if node.last_block_error is None else "degraded",
        "name": node.config.name,
        # who answers: ``yilian up`` checks both against the process it started
        "pid": os.getpid(),
        "startId": getattr(request.app.state, "start_id", None),
        "chainId": node.genesis.chain_id,
        "suite": node.genesis.suite,
        "center": None if node.key_service is None else node.key_service.account.checksum,
        "head": {"number": head.block_number, "hash": "0x" + head.hash.hex(),
                 "stateRoot": "0x" + head.state_root.hex(), "timestamp": head.timestamp},
        "mempool": len(node.mempool),
        "uptimeSeconds": round(time.time() - node.started_at, 1),
        "lastBlockError": node.last_block_error,
        "consensus": None if node.consensus is None else {
            **node.consensus.status().__dict__, "lastError": node.consensus.last_error},
    }


@router.get("/metrics", response_class=PlainTextResponse,
            summary="Prometheus text metrics")
def metrics(node: NodeDep) -> str:
    head = node.core.head()
    lines = [
        "# TYPE yilian_head_number gauge",
        f"yilian_head_number {head.block_number}",
        "# TYPE yilian_mempool_size gauge",
        f"yilian_mempool_size {len(node.mempool)}",
        "# TYPE yilian_uptime_seconds gauge",
        f"yilian_uptime_seconds {time.time() - node.started_at:.1f}",
    ]
    return "\n".join(lines) + "\n"
