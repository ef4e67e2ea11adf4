"""``yilian network init``: generate a consortium's keys, genesis and per-node configs.

Output layout (``--out DIR``)::

    DIR/genesis.json                  the shared genesis (public parts only)
    DIR/network.json                  nodes, URLs, accounts (what ``yilian up`` reads)
    DIR/<node>/config.json            that node's runtime config (ports, peers, role)
    DIR/<node>/genesis.json           a copy of the genesis
    DIR/<node>/node_key               its private node key, mode 0600, nowhere else
    DIR/<center>/account_key          the center's chain account key (signs its publications
                                      and access receipts), mode 0600
    DIR/<center>/enc_key              the center's encryption key (unwraps the data keys of
                                      the records it keeps), mode 0600

The genesis predeploys the domain contracts (Members, Records, Grants) with the members
seeded: the consortium admin, one trading center per validator, and for local use two
enterprises, a bank and an auditor whose keys derive from the public development seed
(listed in network.json with their private keys; never use them on a real network).

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

from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from yilian.contracts.addresses import (
    GRANTS_ADDRESS,
    MEMBERS_ADDRESS,
    RECORDS_ADDRESS,
    ROLE_ADMIN,
    ROLE_AUDITOR,
    ROLE_CENTER,
    ROLE_ENTERPRISE,
    ROLE_FINANCIAL,
    ROLE_NAMES,
)
from yilian.crypto import sm2 as openssl_sm2
from yilian.crypto.suites import get_suite, save_private_key
from yilian.network_configs.domain import MemberSeed, domain_alloc
from yilian.network_configs.local import (
    DEV_SEED,
    RECORD_STORE_ADDRESS,
    DevAccount,
    dev_accounts,
    local_genesis,
)
from yilian.protocol import envelope
from yilian.protocol.credit_code import make_code

NODE_KEY_FILE = "node_key"
ACCOUNT_KEY_FILE = "account_key"
ENC_KEY_FILE = "enc_key"

# Local development members (keys from the public dev seed): (dev account index, credit
# code, role, name). The two enterprise codes are real examples that pass the check.
DEV_MEMBERS = (
    (0, make_code("124403000ADM00001"), ROLE_ADMIN,
     "联盟管理员 consortium admin"),
    (1, "914403001922038216", ROLE_ENTERPRISE, "示例建设工程有限公司 Example Construction Co."),
    (2, "9144030071526726XG", ROLE_ENTERPRISE, "示例科技有限公司 Example Technology Co."),
    (3, make_code("91110000100000001"), ROLE_FINANCIAL, "示例银行 Example Bank"),
    (4, make_code("11110000000000001"), ROLE_AUDITOR, "审计署 Example Audit Office"),
)


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


def center_code(index: int) -> str:
    """The credit code of local center ``index`` (1-based): a public institution in 440300."""
    return make_code(f"12440300MB{index:07d}")


def _dev_enc_private(suite: str, index: int) -> bytes:
    """A development encryption key derived from the public seed (local use only)."""
    seed = keccak(DEV_SEED + b"enc " + str(index).encode())
    if suite == "sm" and not openssl_sm2.is_valid_private_key(seed):
        seed = keccak(seed)
    return seed


def dev_members(suite: str, accounts: list[DevAccount]) -> list[dict[str, Any]]:
    """The local development members (admin, enterprises, bank, auditor) with their keys."""
    out = []
    for index, code, role, name in DEV_MEMBERS:
        enc_private = _dev_enc_private(suite, index)
        out.append({
            "id": code, "role": ROLE_NAMES[role], "roleId": role, "name": name,
            "account": accounts[index].address, "privateKey": accounts[index].private_key,
            "encPrivateKey": "0x" + enc_private.hex(),
            "encPublicKey": "0x" + envelope.enc_public_key(suite, enc_private).hex(),
        })
    return out


def member_seed(member: dict[str, Any]) -> MemberSeed:
    """The genesis seed of a development member (an entry of :func:`dev_members`)."""
    return MemberSeed(id=member["id"], role=member["roleId"], name=member["name"],
                      enc_key=bytes.fromhex(member["encPublicKey"][2:]), endpoint="",
                      account=member["account"])


def make_center(home: Path, index: int, name: str, endpoint: str, suite: str) -> MemberSeed:
    """Create center ``index``'s chain account and encryption keys in its node ``home``
    (files mode 0600) and return its member seed (public parts only)."""
    account = Account.create()
    save_private_key(home / ACCOUNT_KEY_FILE, bytes(account.key))
    enc = envelope.generate_enc_keypair(suite)
    save_private_key(home / ENC_KEY_FILE, enc.private)
    return MemberSeed(id=center_code(index), role=ROLE_CENTER, name=f"交易中心 {name}",
                      enc_key=enc.public, endpoint=endpoint, account=account.address)


def add_members(genesis: dict[str, Any], suite: str, centers: list[MemberSeed],
                accounts: list[DevAccount]) -> list[dict[str, Any]]:
    """Predeploy the domain contracts in ``genesis`` with ``centers`` and the development
    members seeded; return the development members.

    From then on the Members registry decides who may send: ``authorisedSenders`` keeps
    only the development accounts that belong to no member (operator accounts)."""
    members = dev_members(suite, accounts)
    seeds = [*centers, *(member_seed(m) for m in members)]
    genesis["alloc"].update(domain_alloc(seeds))
    member_accounts = {s.account.lower() for s in seeds}
    genesis["authorisedSenders"] = [a for a in genesis["authorisedSenders"]
                                    if a.lower() not in member_accounts]
    return members


def node_entry(name: str, center: MemberSeed | None, host: str, rpc_port: int, home: Path,
               **more: Any) -> dict[str, Any]:
    """A node's entry in ``network.json``; ``more`` adds fields (role, p2p, nodeKey)."""
    return {
        "name": name,
        "center": None if center is None else {"id": center.id, "account": center.account},
        "api": f"http://{host}:{rpc_port}",
        "home": str(home),
        "dataDir": str(home / "data"),
        "rpc": f"http://{host}:{rpc_port}/rpc",
        "ws": f"ws://{host}:{rpc_port}/ws",
        **more,
        "pid": None,
        "log": str(home / "node.log"),
    }


def network_description(genesis: dict[str, Any], suite: str, nodes: list[dict[str, Any]],
                        members: list[dict[str, Any]],
                        accounts: list[DevAccount]) -> dict[str, Any]:
    """The network description (``network.json``): its nodes, the contract addresses, and
    the development members and accounts with their keys."""
    return {
        "name": genesis["name"],
        "chainId": genesis["chainId"],
        "suite": suite,
        "nodes": nodes,
        "contracts": {"RecordStore": RECORD_STORE_ADDRESS, "Members": MEMBERS_ADDRESS,
                      "Records": RECORDS_ADDRESS, "Grants": GRANTS_ADDRESS},
        "members": members,
        "membersWarning": "development members' keys derive from a public seed: local use only",
        "accounts": [{"address": a.address, "privateKey": a.private_key} for a in accounts],
        "accountsWarning": "development keys derived from a public seed: local use only",
    }


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
    seeds: list[MemberSeed] = []
    for plan in plans:
        home = out / plan.name
        home.mkdir()
        private = suite_impl.generate_private_key()
        save_private_key(home / NODE_KEY_FILE, private)
        keys[plan.name] = suite_impl.public_key(private)
        if plan.validator:
            seeds.append(make_center(home, len(seeds) + 1, plan.name,
                                     f"http://{host}:{plan.rpc_port}", suite))
    accounts = dev_accounts()
    genesis = local_genesis(accounts, block_interval_ms=block_interval_ms)
    members = add_members(genesis, suite, seeds, accounts)
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
            "account_key_file": ACCOUNT_KEY_FILE if plan.validator else "",
            "enc_key_file": ENC_KEY_FILE if plan.validator else "",
            "validator": plan.validator,
            "peers": peers,
            "proposer": to_checksum_address(suite_impl.node_id(keys[plan.name])),
        }
        _write_json(home / "config.json", config)
        _write_json(home / "genesis.json", genesis)
        center = next((sd for sd in seeds if sd.endpoint.endswith(f":{plan.rpc_port}")), None)
        entries.append(node_entry(plan.name, center, host, plan.rpc_port, home,
                                  role="validator" if plan.validator else "observer",
                                  p2p=f"{host}:{plan.p2p_port}",
                                  nodeKey="0x" + keys[plan.name].hex()))
    network = network_description(genesis, suite, entries, members, accounts)
    _write_json(out / "network.json", network)
    return network
