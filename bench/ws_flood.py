"""WebSocket flood: a node's memory while clients subscribe a lot and never read.

``python -m yilian.bench.ws_flood`` starts a fresh single-validator network, opens
``--connections`` WebSocket connections from this machine, makes ``--subscriptions`` on
each (half ``newHeads``, half ``logs`` of everything), then stops reading and sends
``--txs-per-block`` ``RecordStore.put`` calls (one log each) per block for ``--blocks``
blocks. It prints the node's resident memory
(VmRSS) before, after subscribing and after the blocks, how many connections the node
refused (1013, its connection caps) and how many it closed as too slow (1008, its queue
caps). Issue 8 finding 8: 30 x 100, 40 blocks took a node from 105 MB to 290 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import to_checksum_address
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from yilian.bench.transactions import GAS_PER_TX, put_selector
from yilian.cli import launcher
from yilian.network_configs.local import RECORD_STORE_ADDRESS, dev_accounts


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    out = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                "params": params}, timeout=30).json()
    if "error" in out:
        raise RuntimeError(out["error"])
    return out["result"]


def _open(stack: contextlib.ExitStack, ws_url: str, subscriptions: int
          ) -> tuple[ClientConnection | None, str]:
    try:
        ws = stack.enter_context(connect(ws_url, open_timeout=30, max_size=None, max_queue=4,
                                         ping_interval=None))  # a client that never reads
        for i in range(subscriptions):
            params: list[Any] = ["newHeads"] if i % 2 == 0 else ["logs", {}]
            ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_subscribe",
                                "params": params}))
            answer = json.loads(ws.recv(timeout=30))
            if "error" in answer:
                return ws, f"subscription refused: {answer['error']['message']}"
        return ws, "open"
    except ConnectionClosed as exc:
        return None, f"closed {exc.rcvd.code if exc.rcvd else None}: " + (
            exc.rcvd.reason if exc.rcvd else "")


def run(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="ws-flood-"))
    info = launcher.up(data, nodes=1, base_port=launcher.free_port_range(2))
    # closing connections the node already dropped raises ConnectionClosed: expected here
    with contextlib.suppress(ConnectionClosed), contextlib.ExitStack() as stack:
        _flood(stack, data, info, args)
    launcher.down(data)


def _flood(stack: contextlib.ExitStack, data: Path, info: dict[str, Any],
           args: argparse.Namespace) -> None:
    try:
        node = info["nodes"][0]
        rpc, ws_url = str(node["rpc"]), str(node["ws"])
        pid = int(json.loads((data / "network.json").read_text())["nodes"][0]["pid"])
        print(f"node pid {pid}: {rss_mb(pid):.0f} MB at start")
        socks = [_open(stack, ws_url, args.subscriptions) for _ in range(args.connections)]
        states: dict[str, int] = {}
        for _, state in socks:
            states[state[:60]] = states.get(state[:60], 0) + 1
        print(f"after subscribing: {rss_mb(pid):.0f} MB; connections: {states}")
        account = dev_accounts()[0]
        chain_id = int(_rpc(rpc, "eth_chainId", []), 16)
        nonce = int(_rpc(rpc, "eth_getTransactionCount", [account.address, "pending"]), 16)
        peak = 0.0
        to = to_checksum_address(RECORD_STORE_ADDRESS)
        for i in range(args.blocks):
            for j in range(args.txs_per_block):  # RecordStore.put: one log each
                n = nonce + i * args.txs_per_block + j
                tx = Account.sign_transaction({
                    "type": 2, "chainId": chain_id, "nonce": n, "to": to, "value": 0,
                    "gas": GAS_PER_TX, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
                    "data": put_selector() + abi_encode(["bytes32", "bytes32"], [
                        n.to_bytes(32, "big"), b"v" * 32]),
                    "accessList": []}, account.private_key)
                _rpc(rpc, "eth_sendRawTransaction", ["0x" + bytes(tx.raw_transaction).hex()])
            target = nonce + (i + 1) * args.txs_per_block
            while int(_rpc(rpc, "eth_getTransactionCount", [account.address, "latest"]),
                      16) < target:
                time.sleep(0.05)
            peak = max(peak, rss_mb(pid))
        time.sleep(1)
        print(f"after {args.blocks} blocks: {rss_mb(pid):.0f} MB (peak {peak:.0f} MB)")
        closed: dict[str, int] = {}
        for ws, _ in socks:
            if ws is None:
                continue
            try:
                while True:
                    ws.recv(timeout=2)
            except TimeoutError:
                state = "still open"
            except ConnectionClosed as exc:
                state = f"closed {exc.rcvd.code if exc.rcvd else None} " + (
                    exc.rcvd.reason[:40] if exc.rcvd else "")
            closed[state] = closed.get(state, 0) + 1
        print(f"connections at the end: {closed}")
    except BaseException:
        launcher.down(data)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=30)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--txs-per-block", type=int, default=5)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
