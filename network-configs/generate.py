"""``yilian network init``: generate a consortium's keys, genesis and per-node configs.

Output layout (``--out DIR``)::

    DIR/genesis.json                  the shared genesis (public parts only)
    DIR/network.json                  nodes, URLs, accounts (what ``yilian up`` reads)
    DIR/<node>/config.json            that node's runtime config (ports, peers, role)
    DIR/<node>/genesis.json           a copy of the genesis
    DIR/<node>/node_key               its private node key, mode 0600, nowhere else

Invariants: a private node key is written once, only into its own node's directory, with
mode 0600; the genesis and every config carry public keys only. Regenerating into a
non-empty directory is refused rather than silently replacing keys.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yilian.network_configs.local import RECORD_STORE_ADDRESS, dev_accounts, local_genesis
from yilian.node.crypto.suites import get_suite, save_private_key

NODE_KEY_FILE = "node_key"


class NetworkInitError(Exception):
    """The network cannot be generated; the message says what to change."""


@dataclass(frozen=True)
class NodePlan:
    name: str
    validator: bool
    rpc_port: int
    p2p_port: int


def plan_nodes(centers: int, observers: int, base_port: int) -> list[NodePlan]:
    """Ports: node i (1-based) serves RPC on base_port + 2(i-1) and p2p on the next port."""
    if centers < 1:
        raise NetworkInitError("--centers must be at least 1")
    if observers < 0:
        raise NetworkInitError("--observers must not be negative")
    plans = []
    for i in range(centers + observers):
        validator = i < centers
        name = f"center-{i + 1}" if validator else f"observer-{i - centers + 1}"
        plans.append(NodePlan(name, validator, base_port + 2 * i, base_port + 2 * i + 1))
    return plans


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def init_network(out: Path, *, centers: int = 4, observers: int = 0, suite: str = "standard",
                 base_port: int = 8545, block_interval_ms: int = 500,
                 host: str = "127.0.0.1") -> dict[str, Any]:
    """Generate a consortium in ``out``; return the network description (network.json)."""
    suite_impl = get_suite(suite)
    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        raise NetworkInitError(f"{out} is not empty; choose a new --out directory (existing keys "
                               "are never overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_nodes(centers, observers, base_port)
    keys: dict[str, bytes] = {}
    for plan in plans:
        home = out / plan.name
        home.mkdir()
        private = suite_impl.generate_private_key()
        save_private_key(home / NODE_KEY_FILE, private)
        keys[plan.name] = suite_impl.public_key(private)
    accounts = dev_accounts()
    genesis = local_genesis(accounts, block_interval_ms=block_interval_ms)
    genesis["name"] = f"yilian-{centers}-centers"
    genesis["suite"] = suite
    genesis["validators"] = [{"name": p.name, "nodeKey": "0x" + keys[p.name].hex(), "power": 1}
                             for p in plans if p.validator]
    genesis["observers"] = [{"name": p.name, "nodeKey": "0x" + keys[p.name].hex()}
                            for p in plans if not p.validator]
    _write_json(out / "genesis.json", genesis)
    entries = []
    for plan in plans:
        home = out / plan.name
        peers = [{"name": p.name, "host": host, "port": p.p2p_port,
                  "nodeKey": "0x" + keys[p.name].hex()} for p in plans if p is not plan]
        config = {
            "name": plan.name,
            "host": host,
            "rpc_port": plan.rpc_port,
            "p2p_port": plan.p2p_port,
            "genesis_file": "genesis.json",
            "data_dir": "data",
            "node_key_file": NODE_KEY_FILE,
            "validator": plan.validator,
            "peers": peers,
            "proposer": "0x" + suite_impl.node_id(keys[plan.name]).hex(),
        }
        _write_json(home / "config.json", config)
        _write_json(home / "genesis.json", genesis)
        entries.append({
            "name": plan.name,
            "role": "validator" if plan.validator else "observer",
            "home": str(home),
            "dataDir": str(home / "data"),
            "rpc": f"http://{host}:{plan.rpc_port}/rpc",
            "ws": f"ws://{host}:{plan.rpc_port}/ws",
            "p2p": f"{host}:{plan.p2p_port}",
            "nodeKey": "0x" + keys[plan.name].hex(),
            "pid": None,
            "log": str(home / "node.log"),
        })
    network = {
        "name": genesis["name"],
        "chainId": genesis["chainId"],
        "suite": suite,
        "nodes": entries,
        "contracts": {"RecordStore": RECORD_STORE_ADDRESS},
        "accounts": [{"address": a.address, "privateKey": a.private_key} for a in accounts],
        "accountsWarning": "development keys derived from a public seed: local use only",
    }
    _write_json(out / "network.json", network)
    return network
