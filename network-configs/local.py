"""The embedded default network: a local development consortium on this machine.

Development accounts are derived from a fixed, public seed, like hardhat's and anvil's:
their private keys are printed and written to ``network.json``. They exist for local use
only; never fund or authorise them on a real network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak

from yilian.contracts.artifacts import load
from yilian.node.genesis import DEFAULT_MAX_BLOCK_GAS, DEFAULT_MAX_TX_GAS

LOCAL_CHAIN_ID = 7460
DEV_SEED = b"yilian local development account "
# RecordStore is predeployed here on the local network (runtime code in genesis alloc).
RECORD_STORE_ADDRESS = "0x00000000000000000000000000000000000A11cE"
DEV_BALANCE = 10**24  # not needed to pay gas (fees are zero); for value transfers in tests


@dataclass(frozen=True)
class DevAccount:
    address: str
    private_key: str


def dev_accounts(count: int = 10) -> list[DevAccount]:
    """The deterministic development accounts (local use only)."""
    out = []
    for i in range(count):
        key = keccak(DEV_SEED + str(i).encode())
        out.append(DevAccount(Account.from_key(key).address, "0x" + key.hex()))
    return out


def local_genesis(accounts: list[DevAccount], *, chain_id: int = LOCAL_CHAIN_ID,
                  block_interval_ms: int = 500, max_tx_per_block: int = 2000) -> dict[str, Any]:
    """A genesis document funding and authorising ``accounts``, with RecordStore predeployed.

    Without the domain contracts ``authorisedSenders`` is the whole allowlist; once
    :func:`~yilian.network_configs.generate.add_members` adds them, it keeps only the
    accounts that belong to no member (operator accounts)."""
    record_store = load("RecordStore")
    alloc: dict[str, Any] = {a.address: {"balance": hex(DEV_BALANCE)} for a in accounts}
    alloc[RECORD_STORE_ADDRESS] = {"balance": "0x0",
                                   "code": "0x" + record_store.deployed_bytecode.hex()}
    return {
        "name": "yilian-local",
        "chainId": chain_id,
        "suite": "standard",
        "timestamp": 0,
        "gasLimit": 1_000_000_000,
        "extraData": "0x" + b"yilian local".hex(),
        # Gas caps: see docs/chain-core.md "Bounded work" for the figures behind them.
        "params": {"blockIntervalMs": block_interval_ms, "maxTxPerBlock": max_tx_per_block,
                   "heartbeatMs": 0, "maxTxGas": DEFAULT_MAX_TX_GAS,
                   "maxBlockGas": DEFAULT_MAX_BLOCK_GAS},
        "alloc": alloc,
        "authorisedSenders": [a.address for a in accounts],
    }
