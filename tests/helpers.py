"""In-process node factory and transaction signers shared by the fast (no-subprocess) tests.

``make_node`` builds a :class:`~yilian.node.service.Node` in a temp dir without starting the
block-producer thread: tests make blocks explicitly with :func:`produce_all`, so block
contents are deterministic. Always ``node.stop()`` it (closes LevelDB).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from web3 import Web3

from yilian.api.app import create_app
from yilian.contracts.artifacts import load
from yilian.network_configs.local import (
    LOCAL_CHAIN_ID,
    RECORD_STORE_ADDRESS,
    DevAccount,
    dev_accounts,
    local_genesis,
)
from yilian.node.config import parse_config
from yilian.node.interfaces import CommittedBlock
from yilian.node.producer import produce
from yilian.node.service import Node

ACCOUNTS: list[DevAccount] = dev_accounts()
KEYS: list[str] = [a.private_key for a in ACCOUNTS]
ADDRESSES: list[str] = [a.address for a in ACCOUNTS]

_RECORD_STORE = Web3().eth.contract(address=to_checksum_address(RECORD_STORE_ADDRESS),
                                    abi=load("RecordStore").abi)


@functools.cache
def _local_genesis_json() -> str:
    return json.dumps(local_genesis(ACCOUNTS))


def genesis_doc(**overrides: Any) -> dict[str, Any]:
    """The local development genesis (dev accounts funded and authorised) plus overrides.

    A fresh copy on every call; callers may mutate it.
    """
    doc: dict[str, Any] = json.loads(_local_genesis_json())
    doc.update(overrides)
    return doc


def make_node(tmp_path: Path, *, config: dict[str, Any] | None = None,
              **genesis_overrides: Any) -> Node:
    """A node over ``tmp_path`` (genesis.json + config.json written there), not started."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    genesis_path = tmp_path / "genesis.json"
    if not genesis_path.exists() or genesis_overrides:
        genesis_path.write_text(json.dumps(genesis_doc(**genesis_overrides), indent=1))
    cfg = dict(config or {})
    (tmp_path / "config.json").write_text(json.dumps(cfg, indent=1))
    return Node(parse_config(cfg), tmp_path)


def make_client(node: Node, *, raise_server_exceptions: bool = True) -> TestClient:
    """An HTTP client talking to the node's FastAPI app in process.

    With ``raise_server_exceptions=False`` an unhandled error shows up as an HTTP 500
    response instead of being re-raised in the test.
    """
    return TestClient(create_app(node), raise_server_exceptions=raise_server_exceptions)


def produce_all(node: Node, max_count: int = 10_000) -> CommittedBlock | None:
    """Build and commit one block from whatever the mempool has ready."""
    return produce(node.ledger, node.mempool.select(max_count))


def record_put_data(key: bytes, value: bytes) -> bytes:
    """ABI-encoded calldata of ``RecordStore.put(key, value)`` (both 32 bytes, right-padded)."""
    encoded = _RECORD_STORE.encode_abi("put", args=[key.ljust(32, b"\0"), value.ljust(32, b"\0")])
    return bytes.fromhex(encoded[2:])


def sign(key: str, fields: dict[str, Any]) -> bytes:
    """Sign a transaction dict with eth_account; returns the raw encoding."""
    return bytes(Account.sign_transaction(fields, key).raw_transaction)


def sign_put(key: str, nonce: int, record_key: bytes = b"k", value: bytes = b"v", *,
             chain_id: int = LOCAL_CHAIN_ID, gas: int = 100_000) -> bytes:
    """A type-2, zero-fee RecordStore ``put`` transaction."""
    return sign(key, {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": to_checksum_address(RECORD_STORE_ADDRESS),
        "value": 0,
        "gas": gas,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
        "data": record_put_data(record_key, value),
    })


def sign_transfer(key: str, nonce: int, to: str | None = None, value: int = 1, *,
                  chain_id: int | None = LOCAL_CHAIN_ID, tx_type: int = 2,
                  gas: int = 21_000) -> bytes:
    """A zero-fee value transfer of type 0 (EIP-155 unless ``chain_id`` is None), 1 or 2."""
    fields: dict[str, Any] = {
        "nonce": nonce,
        "to": to or ADDRESSES[-1],
        "value": value,
        "gas": gas,
    }
    if tx_type == 2:
        fields.update(type=2, maxFeePerGas=0, maxPriorityFeePerGas=0)
    else:
        fields["gasPrice"] = 0
        if tx_type == 1:
            fields.update(type=1, accessList=[])
    if chain_id is not None:
        fields["chainId"] = chain_id
    return sign(key, fields)


def rpc_body(method: str, params: list[Any] | None = None, req_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params or []}
