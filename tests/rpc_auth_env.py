"""A node with the domain contracts whose JSON-RPC needs tokens, served in process.

The node's config forces ``rpc_auth.required`` (or listens on ``0.0.0.0``, which needs no
socket with a TestClient): the same code path as a node reachable beyond loopback. It
has two centers (``c1`` runs the node and keeps the records, ``c2`` keeps none) and the
development members (admin, two enterprises, a bank, an auditor).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from fastapi.testclient import TestClient

from tests.domain_node import domain_node, in_process_sdk, new_center
from yilian.api.app import create_app
from yilian.network_configs.generate import center_code, dev_members, member_seed
from yilian.network_configs.local import dev_accounts
from yilian.node.audience import request_audience
from yilian.node.rpc_tokens import TokenKey
from yilian.node.service import Node
from yilian.protocol import standard
from yilian.protocol.rpc_login import sign_login
from yilian.protocol.signed_request import sign_request
from yilian.sdk.center import Center
from yilian.sdk.client import Client
from yilian.sdk.enterprise import Enterprise
from yilian.sdk.grantee import Grantee

ENTERPRISE = "914403001922038216"  # dev member 1: subject and owner of the records
ENTERPRISE2 = "9144030071526726XG"  # dev member 2: party of nothing
CENTER = center_code(1)  # runs the node, keeps the records
CENTER2 = center_code(2)  # keeps no record of ENTERPRISE
ACCOUNTS = dev_accounts()
STRANGER = ACCOUNTS[7]  # funded, belongs to no member


@dataclass
class AuthEnv:
    node: Node
    http: TestClient
    keys: dict[str, str]  # member code -> chain private key (centers included)
    roles: dict[str, str]  # member code -> role name
    enc: dict[str, str]  # member code -> encryption private key (dev members)

    @property
    def chain_id(self) -> int:
        return self.node.genesis.chain_id

    @property
    def token_key(self) -> TokenKey:
        key: TokenKey = self.http.app.state.token_key  # type: ignore[attr-defined]
        return key

    def code(self, role: str) -> str:
        return next(c for c, r in self.roles.items() if r == role)

    def sdk(self, code: str) -> Client:
        return in_process_sdk(self.http, self.keys[code], self.enc.get(code))

    def login(self, key: str, ttl_s: int = 3600) -> str:
        """A token for ``key``'s account, through the challenge flow."""
        account = Account.from_key(key).address
        ch = self.http.post("/v1/auth/challenge", json={"account": account})
        assert ch.status_code == 200, ch.text
        body = ch.json()
        sig = sign_login(key, chain_id=self.chain_id, node=body["node"], nonce=body["nonce"],
                         ttl_s=ttl_s)
        out = self.http.post("/v1/auth/token", json={"account": account, "nonce": body["nonce"],
                                                     "signature": sig, "ttl_s": ttl_s})
        assert out.status_code == 200, out.text
        return str(out.json()["token"])

    def token(self, code: str) -> str:
        return self.login(self.keys[code])

    def rpc(self, token: str | None, method: str, *params: Any) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.http.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method,
                                            "params": list(params)}, headers=headers)

    def get(self, code: str, path: str) -> httpx.Response:
        """A signed /v1 GET by member ``code``."""
        headers = sign_request(self.keys[code], chain_id=self.chain_id,
                               audience=request_audience(self.node), method="GET",
                               path=path).as_dict()
        return self.http.get(path, headers=headers)


@dataclass(frozen=True)
class Activity:
    """What happened on the chain before the privacy checks."""

    record_id: str  # a basic record about ENTERPRISE, kept by CENTER
    to_bank: dict[str, Any]  # ENTERPRISE -> bank, basic: read once
    to_bank_other_type: dict[str, Any]  # ENTERPRISE -> bank, qualification (CENTER keeps none)
    to_admin: dict[str, Any]  # ENTERPRISE -> admin, basic: never read
    read_receipt_tx: str  # CENTER's transaction recording the bank's read


def make_activity(env: AuthEnv) -> Activity:
    """Publish, grant and read through the SDK (whose JSON-RPC calls log in by themselves)."""
    payload = standard.example_record("basic", ENTERPRISE)
    out = Center(env.sdk(CENTER)).publish_record("basic", ENTERPRISE, payload, owner="subject",
                                                 client_id="auth-basic-1")
    owner = Enterprise(env.sdk(ENTERPRISE), ENTERPRISE)
    bank, admin = env.code("financial"), env.code("admin")
    to_bank = owner.grant(bank, types=["basic"], purpose="loan", max_reads=3, valid_for_s=3600)
    other = owner.grant(bank, types=["qualification"], purpose="tender", max_reads=3,
                        valid_for_s=3600)
    to_admin = owner.grant(admin, types=["basic"], purpose="review", max_reads=1,
                           valid_for_s=3600)
    read = Grantee(env.sdk(bank)).read(out.record_id, to_bank["grant_id"])
    assert read.receipt_tx
    return Activity(out.record_id, to_bank, other, to_admin, read.receipt_tx)


@contextmanager
def auth_env(home: Path, rpc_auth: dict[str, Any] | None = None, host: str = "127.0.0.1"
             ) -> Iterator[AuthEnv]:
    members = dev_members("standard", ACCOUNTS)
    keys = {m["id"]: m["privateKey"] for m in members}
    roles = {m["id"]: m["role"] for m in members}
    seeds = [member_seed(m) for m in members]
    (home / "c2").mkdir()  # c2's keys: this node is c1's
    for index, code, where in ((1, CENTER, home), (2, CENTER2, home / "c2")):
        seed, keys[code] = new_center(where, index, f"c{index}")
        seeds.append(seed)
        roles[code] = "center"
    node = domain_node(home, ACCOUNTS, seeds, [s.account for s in seeds[-2:]], host=host,
                       block_interval_ms=100,  # writes wait for their block
                       rpc_auth=rpc_auth if rpc_auth is not None else {"required": True})
    try:
        node.start()
        enc = {m["id"]: m["encPrivateKey"] for m in members}
        yield AuthEnv(node, TestClient(create_app(node)), keys, roles, enc)
    finally:
        node.stop()
