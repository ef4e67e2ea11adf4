"""Signed load: pre-signed ``RecordStore.put(key, data)`` calls from development accounts.

Each transaction is type 2 with zero fees and a unique key, so every one of them commits
and changes state; sender ``i % len(senders)`` signs transaction ``i``, nonces consecutive.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from yilian.bench.command import BenchError, log
from yilian.contracts.artifacts import load as load_artifact
from yilian.network_configs.local import RECORD_STORE_ADDRESS, dev_accounts

GAS_PER_TX = 100_000
MAX_SENDERS = 10  # the local genesis authorises ten development accounts


@dataclass(frozen=True)
class Sender:
    address: str
    private_key: str


@dataclass(frozen=True)
class PreSigned:
    raw: bytes
    raw_hex: str
    hash: str  # 0x-prefixed lowercase hex
    sender: str
    nonce: int


def put_selector() -> bytes:
    """The 4-byte selector of ``RecordStore.put(bytes32,bytes32)``, from the shipped ABI."""
    abi = load_artifact("RecordStore").abi
    for entry in abi:
        if entry.get("type") == "function" and entry.get("name") == "put":
            types = [i["type"] for i in entry.get("inputs", [])]
            if types != ["bytes32", "bytes32"]:
                raise BenchError(f"RecordStore.put has inputs {types}; expected two bytes32")
            return keccak(f"put({','.join(types)})".encode())[:4]
    raise BenchError("the RecordStore ABI has no put function")


def presign(senders: Sequence[Sender], start_nonces: Sequence[int], count: int, *,
            chain_id: int, tag: bytes) -> list[PreSigned]:
    """``count`` signed ``put`` calls, senders interleaved (tx i from sender i % len)."""
    selector = put_selector()
    to = to_checksum_address(RECORD_STORE_ADDRESS)
    out: list[PreSigned] = []
    for i in range(count):
        s = i % len(senders)
        nonce = start_nonces[s] + i // len(senders)
        key = keccak(tag + b"/key/" + i.to_bytes(8, "big"))
        data = keccak(tag + b"/data/" + i.to_bytes(8, "big"))
        signed = Account.sign_transaction({
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "gas": GAS_PER_TX,
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
            "data": selector + abi_encode(["bytes32", "bytes32"], [key, data]),
            "accessList": [],
        }, senders[s].private_key)
        raw = bytes(signed.raw_transaction)
        out.append(PreSigned(raw=raw, raw_hex="0x" + raw.hex(),
                             hash="0x" + bytes(signed.hash).hex(),
                             sender=senders[s].address, nonce=nonce))
    return out


def dev_senders(count: int = MAX_SENDERS) -> list[Sender]:
    """The first ``count`` development accounts of the local network."""
    return [Sender(a.address, a.private_key) for a in dev_accounts(count)]


def senders_from_file(path: Path) -> list[Sender]:
    """The accounts of a network.json (``accounts``: address, privateKey)."""
    try:
        doc = json.loads(path.read_text())
        return [Sender(a["address"], a["privateKey"]) for a in doc["accounts"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"cannot read accounts from {path}: {exc}; expected a network.json "
                         'with "accounts": [{"address", "privateKey"}, ...]') from exc


def sign_load(senders: Sequence[Sender], nonces: Sequence[int], count: int, chain_id: int
              ) -> list[PreSigned]:
    """:func:`presign` with fresh keys, logging how long the signing took."""
    started = time.perf_counter()
    txs = presign(senders, nonces, count, chain_id=chain_id, tag=os.urandom(16))
    log(f"signed {count} transactions from {len(senders)} senders in "
        f"{time.perf_counter() - started:.1f} s")
    return txs
