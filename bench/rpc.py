"""The benchmarks' JSON-RPC client: one async httpx pool per endpoint, batches included.

A failed call (transport error or a JSON-RPC error object) raises :class:`RpcFailure`,
whose message names the method and the endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from yilian.bench.command import BenchError
from yilian.bench.transactions import Sender


class RpcFailure(BenchError):
    """A JSON-RPC call failed (transport error or an error object)."""


class Rpc:
    """A small async JSON-RPC client over one httpx connection pool."""

    def __init__(self, url: str, *, connections: int, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections),
            headers={"content-type": "application/json"},
            transport=transport,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def post(self, payload: Any) -> Any:
        body = json.dumps(payload, separators=(",", ":"))
        resp = await self.client.post(self.url, content=body)
        if resp.status_code == 204:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise RpcFailure(f"HTTP {resp.status_code} from {self.url}: not JSON "
                             f"({resp.text[:200]!r})") from exc

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        try:
            out = await self.post({"jsonrpc": "2.0", "id": 1, "method": method,
                                   "params": params or []})
        except httpx.HTTPError as exc:
            raise RpcFailure(f"{method} to {self.url} failed: {type(exc).__name__} {exc}"
                             ) from exc
        if not isinstance(out, dict):
            raise RpcFailure(f"{method}: unexpected response {out!r:.200}")
        if "error" in out:
            raise RpcFailure(f"{method}: {out['error']}")
        return out.get("result")

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Results of ``calls`` in order; raises RpcFailure if any of them failed."""
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                   for i, (m, p) in enumerate(calls)]
        try:
            out = await self.post(payload)
        except httpx.HTTPError as exc:
            raise RpcFailure(f"batch to {self.url} failed: {type(exc).__name__} {exc}") from exc
        if not isinstance(out, list):
            raise RpcFailure(f"batch: unexpected response {out!r:.300}")
        by_id = {r.get("id"): r for r in out if isinstance(r, dict)}
        results = []
        for i, (method, _) in enumerate(calls):
            r = by_id.get(i)
            if r is None:
                raise RpcFailure(f"batch: no response to request {i} ({method})")
            if "error" in r:
                raise RpcFailure(f"{method}: {r['error']}")
            results.append(r.get("result"))
        return results


async def node_info(rpc_url: str, senders: Sequence[Sender], timeout: float
                    ) -> tuple[int, list[int]]:
    """The node's chain id and each sender's next nonce (``pending``)."""
    rpc = Rpc(rpc_url, connections=1, timeout=timeout)
    try:
        chain_id = int(await rpc.call("eth_chainId"), 16)
        nonces = await rpc.batch([("eth_getTransactionCount", [s.address, "pending"])
                                  for s in senders])
        return chain_id, [int(n, 16) for n in nonces]
    finally:
        await rpc.close()
