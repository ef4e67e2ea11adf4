"""A standard Ethereum client in another language must work too: ethers.js v6 on Node.js.

``tests/clients/ethers_smoke.mjs`` is an ordinary ethers v6 script (JsonRpcProvider, Wallet,
a Contract from a human-readable ABI). This test installs the exact ethers version pinned in
``tests/clients/package.json``/``package-lock.json`` into a temporary copy (``npm ci``), runs
the script against a live node and checks the JSON summary it prints against the node.

Skipped (with the reason) only when ``node``/``npm`` are missing or npm cannot reach its
registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_hash.auto import keccak

from tests.conftest import LocalNetwork
from yilian.network_configs.local import LOCAL_CHAIN_ID

CLIENTS = Path(__file__).parent / "clients"
FILES = ("package.json", "package-lock.json", "ethers_smoke.mjs")
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET",
                  "ENETUNREACH", "EHOSTUNREACH", "network request", "request to https://")


def _pinned_ethers_version() -> str:
    deps = json.loads((CLIENTS / "package.json").read_text())["dependencies"]
    version = str(deps["ethers"])
    assert version[0].isdigit() and all(c.isdigit() or c == "." for c in version), (
        f"ethers must be pinned exactly in tests/clients/package.json, got {version!r}")
    return version


@pytest.fixture(scope="module")
def ethers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary copy of tests/clients with ethers installed by ``npm ci``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the ethers.js client test "
                    f"(node: {node}, npm: {npm})")
    work = tmp_path_factory.mktemp("ethers")
    for name in FILES:
        shutil.copy(CLIENTS / name, work / name)
    try:
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work,
            capture_output=True, text=True, timeout=240,
            env={**os.environ, "npm_config_update_notifier": "false"})
    except subprocess.TimeoutExpired:
        pytest.skip("npm ci did not finish within 240 s (is the npm registry reachable?)")
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        if any(marker in output for marker in NETWORK_ERRORS):
            pytest.skip(f"npm cannot reach its registry: {output.strip()[-500:]}")
        pytest.fail(f"npm ci failed ({proc.returncode}):\n{output}")
    installed = json.loads((work / "node_modules" / "ethers" / "package.json").read_text())
    assert installed["version"] == _pinned_ethers_version()
    return work


def _run_smoke(work: Path, rpc_url: str, private_key: str, store: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", "ethers_smoke.mjs", rpc_url, private_key, store], cwd=work,
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"ethers script failed:\n{proc.stderr}\n{proc.stdout}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"ethers script printed nothing; stderr:\n{proc.stderr}"
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    body = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                      timeout=30).json()
    assert "error" not in body, body
    return body["result"]


def test_ethers_v6_smoke(network: LocalNetwork, ethers_dir: Path) -> None:
    # ethers refuses mixed-case addresses with a bad EIP-55 checksum, so the network.json
    # address is handed over lower-cased (see test_web3_e2e for that separate issue).
    store = str(network.info["contracts"]["RecordStore"]).lower()
    key = network.key(2)
    account = Account.from_key(key)
    s = _run_smoke(ethers_dir, network.rpc, key, store)

    assert s["ethersVersion"] == _pinned_ethers_version()
    assert s["chainId"] == str(LOCAL_CHAIN_ID)
    assert s["wallet"] == account.address
    assert s["store"].lower() == store
    assert s["feeData"]["gasPrice"] == "0"

    # the put sent with ethers' defaults
    r = s["receipt"]
    assert r["status"] == 1
    assert r["hash"] == s["tx"]["hash"]
    assert r["from"] == account.address
    assert r["to"].lower() == store
    assert r["contractAddress"] is None
    assert int(r["gasUsed"]) > 21_000
    assert r["gasPrice"] == "0"
    assert r["logs"] == 1
    assert s["tx"]["chainId"] == str(LOCAL_CHAIN_ID)
    assert s["block"]["hash"] == r["blockHash"]
    assert s["block"]["number"] == r["blockNumber"]
    assert s["block"]["txs"][r["index"]] == r["hash"]
    assert s["fetchedTx"]["hash"] == r["hash"]
    assert s["fetchedTx"]["blockHash"] == r["blockHash"]
    assert s["fetchedTx"]["from"] == account.address
    assert s["fetchedTx"]["data"] == ("0x" + keccak(b"put(bytes32,bytes32)")[:4].hex()
                                      + s["key"][2:] + s["value"][2:])
    assert s["parsedLogs"] == [{"name": "RecordPut", "key": s["key"],
                                "writer": account.address, "value": s["value"]}]

    # the explicit type-2 put
    r2 = s["receipt2"]
    assert s["tx2"]["type"] == 2 and r2["type"] == 2
    assert r2["status"] == 1 and r2["gasPrice"] == "0" and r2["logs"] == 1

    # read back through eth_call, logs through eth_getLogs
    assert s["readBack"] == s["value"]
    assert s["readBack2"] == s["value2"]
    own = [e for e in s["events"] if e["writer"] == account.address]
    assert [(e["key"], e["value"], e["transactionHash"]) for e in own] == [
        (s["key"], s["value"], s["tx"]["hash"]), (s["key2"], s["value2"], s["tx2"]["hash"])]
    assert [e["blockHash"] for e in own] == [r["blockHash"], r2["blockHash"]]
    assert s["ownEvents"] == [s["tx"]["hash"]]
    assert int(s["writesAfter"]) >= int(s["writesBefore"]) + 2

    # and the node agrees with what ethers saw
    assert s["nonceAfter"] == int(_rpc(network.rpc, "eth_getTransactionCount",
                                       [account.address, "latest"]), 16)
    receipt = _rpc(network.rpc, "eth_getTransactionReceipt", [s["tx"]["hash"]])
    assert receipt["blockHash"] == r["blockHash"]
    assert int(receipt["type"], 16) == s["tx"]["type"]
    data = "0x" + keccak(b"get(bytes32)")[:4].hex() + s["key"][2:]
    assert _rpc(network.rpc, "eth_call", [{"to": store, "data": data}, "latest"]) == s["value"]
