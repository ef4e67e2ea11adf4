"""Waiting-call benchmark (issue 8, finding 5): one transaction that cannot execute (a
nonce gap) posted many times at once to ``POST /v1/grants``.

``python -m yilian.bench.waiting [--nodes 1] [--posts 45]`` starts a fresh local network
(``yilian up``) in a temporary directory, signs one grant by the development enterprise
with its next nonce + 1, posts it ``--posts`` times concurrently and, while those are in
flight, times ``GET /healthz`` and ``eth_blockNumber``. It prints the answers' statuses,
the slowest answer and the two latencies. The network is always stopped at the end.

Before the fix each post waited for a commit that could not come (30-60 s, HTTP 504) in a
worker thread; now each is answered at once (HTTP 202, ``status: queued``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_utils import to_checksum_address

from yilian.cli import launcher
from yilian.contracts.abi import contract_abi
from yilian.contracts.addresses import GRANTS_ADDRESS
from yilian.protocol.credit_code import to_bytes32
from yilian.sdk.client import Client
from yilian.sdk.enterprise import types_mask


def gap_grant(info: dict[str, Any]) -> tuple[str, str]:
    """(api URL, a grant signed with the enterprise's next nonce + 1)."""
    api = str(info["nodes"][0]["api"])
    ent = next(m for m in info["members"] if m["role"] == "enterprise")
    bank = next(m for m in info["members"] if m["role"] == "financial")
    client = Client(api, ent["privateKey"])
    nonce = int(client.rpc("eth_getTransactionCount", client.address, "pending"), 16)
    data = contract_abi("Grants").encode_call(
        "grant", to_bytes32(bank["id"]), to_bytes32(ent["id"]), types_mask(["basic"]),
        b"\x00" * 32, "bench gap", int(time.time()) + 3600, 1)
    signed = Account.sign_transaction({
        "type": 2, "chainId": client.chain_id, "nonce": nonce + 1,
        "to": to_checksum_address(GRANTS_ADDRESS), "value": 0, "gas": 2_000_000,
        "data": data, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0}, ent["privateKey"])
    return api, "0x" + bytes(signed.raw_transaction).hex()


async def measure(api: str, raw: str, posts: int) -> str:
    limits = httpx.Limits(max_connections=posts + 10)
    async with httpx.AsyncClient(base_url=api, timeout=180, limits=limits) as http:
        start = time.monotonic()

        async def post() -> tuple[int, float]:
            resp = await http.post("/v1/grants", json={"raw_transaction": raw})
            return resp.status_code, time.monotonic() - start

        tasks = [asyncio.ensure_future(post()) for _ in range(posts)]
        await asyncio.sleep(0.2)
        t = time.monotonic()
        health = await http.get("/healthz")
        health_s = time.monotonic() - t
        t = time.monotonic()
        block = await http.post("/rpc", json={"jsonrpc": "2.0", "id": 1,
                                              "method": "eth_blockNumber", "params": []})
        block_s = time.monotonic() - t
        answers = await asyncio.gather(*tasks)
    statuses = sorted({s for s, _ in answers})
    return (f"{posts} posts of one nonce-gap grant: HTTP {statuses}, slowest answer "
            f"{max(s for _, s in answers):.2f} s; meanwhile /healthz HTTP {health.status_code} "
            f"in {health_s * 1000:.0f} ms, eth_blockNumber HTTP {block.status_code} in "
            f"{block_s * 1000:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--posts", type=int, default=45)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="yilian-waiting-"))
    try:
        info = launcher.up(data_dir, nodes=args.nodes,
                           base_port=launcher.free_port_range(2 * args.nodes + 10))
        api, raw = gap_grant(info)
        print(asyncio.run(measure(api, raw, args.posts)))
    finally:
        if (data_dir / launcher.NETWORK_FILE).exists():
            launcher.down(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
