"""One node with the domain contracts, in process: its home (center keys, genesis, config)
and the SDK's HTTP session served by a FastAPI ``TestClient``.

The genesis funds and authorises the given dev accounts, predeploys Members, Records and
Grants with the given seeds, and authorises the extra senders (the centers' accounts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from fastapi.testclient import TestClient

from yilian.network_configs.domain import MemberSeed, domain_alloc
from yilian.network_configs.generate import ACCOUNT_KEY_FILE, make_center
from yilian.network_configs.local import DevAccount, local_genesis
from yilian.node.config import parse_config
from yilian.node.service import Node
from yilian.sdk import client as sdk_client
from yilian.sdk.client import Client

API = "http://testserver"


def new_center(home: Path, index: int = 1, name: str = "c1") -> tuple[MemberSeed, str]:
    """Center ``index``'s seed, its chain and encryption keys saved in ``home`` (as
    ``init_network`` saves them), and its chain private key as 0x hex."""
    seed = make_center(home, index, name, "", "standard")
    return seed, "0x" + (home / ACCOUNT_KEY_FILE).read_text().strip()


def domain_node(home: Path, accounts: list[DevAccount], seeds: list[MemberSeed],
                senders: list[str], block_interval_ms: int | None = None,
                **config: Any) -> Node:
    """The node of center ``c1`` in ``home`` (not started), with its genesis and config
    written there; ``config`` adds to or overrides the node config. A short
    ``block_interval_ms`` (e.g. 100) makes tests that wait for their writes' blocks wait
    less; None keeps the genesis default."""
    genesis = (local_genesis(accounts) if block_interval_ms is None
               else local_genesis(accounts, block_interval_ms=block_interval_ms))
    genesis["alloc"].update(domain_alloc(seeds))
    genesis["authorisedSenders"] = [*genesis["authorisedSenders"], *senders]
    doc = {"name": "c1", "genesis_file": "genesis.json", "data_dir": "data",
           "account_key_file": "account_key", "enc_key_file": "enc_key", **config}
    (home / "genesis.json").write_text(json.dumps(genesis, indent=1))
    (home / "config.json").write_text(json.dumps(doc, indent=1))
    return Node(parse_config(doc), home)


class InProcessSession:
    """Stands in for the SDK's ``requests.Session``: the same calls, served by ``http``."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    def get(self, url: str, timeout: float | None = None, **kw: Any) -> httpx.Response:
        return self.http.get(url, **kw)

    def post(self, url: str, timeout: float | None = None, json: Any = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(url, json=json, headers=headers)

    def request(self, method: str, url: str, data: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None
                ) -> httpx.Response:
        return self.http.request(method, url, content=data, headers=headers)


def in_process_sdk(http: TestClient, key: str, enc: str | None = None) -> Client:
    """An SDK client for ``key`` (and encryption key ``enc``) talking to ``http``."""
    with mock.patch.object(sdk_client.requests, "Session", lambda: InProcessSession(http)):
        return Client(API, key, enc_private_key=enc)

