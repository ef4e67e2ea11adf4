"""Genesis: the consortium's starting state and chain parameters, parsed strictly.

A genesis file is JSON (see ``network-configs/``)::

    {
      "chainId": 7460,
      "suite": "standard",                  # or "sm"
      "timestamp": 0,
      "gasLimit": 1000000000,
      "extraData": "0x...",
      "params": {"blockIntervalMs": 500, "maxTxPerBlock": 2000, "heartbeatMs": 0,
                 "maxTxGas": 3000000, "maxBlockGas": 50000000},
      "alloc": {"0xADDR": {"balance": "0x0", "nonce": 0, "code": "0x..",
                           "storage": {"0x1": "0x2"}}},
      "authorisedSenders": ["0xADDR", ...]  # operator accounts that are not members
    }

Who may send: when the domain contracts are in ``alloc``, the Members registry at the head
decides (see ``node/admission.py``); ``authorisedSenders`` then only adds operator accounts
that belong to no member. Without the domain contracts it is the whole allowlist, and an
empty list admits any signed transaction (development chains).

Gas caps (``params``): ``maxTxGas`` bounds one transaction's gas limit and ``maxBlockGas``
the gas a block may use; both bound how long a block takes to execute on the slowest
validator (figures and reasoning in docs/chain-core.md, measured by ``bench/evm_speed.py``).
Absent, they default to 3,000,000 and 50,000,000 (each at most half the gas limit).

Invariants: the same genesis file always yields the same genesis block hash; the base
fee starts at zero and stays zero because blocks never use more than half the gas limit
(EIP-1559's target), so no member ever needs a balance to pay for gas.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth.abc import (
    BlockHeaderAPI,
    ComputationAPI,
    DatabaseAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth.chains.base import Chain
from eth.db.chain import ChainDB
from eth.exceptions import TransactionNotFound
from eth.vm.forks.prague import PragueVM
from eth_typing import BlockNumber, Hash32
from eth_utils import is_hex_address, to_canonical_address

from yilian.node.execution_limits import YilianState, check_block_gas

SUITES = ("standard", "sm")
DEFAULT_MAX_TX_GAS = 3_000_000
DEFAULT_MAX_BLOCK_GAS = 50_000_000
MIN_TX_GAS = 21_000  # a plain transfer: a cap below it would admit nothing


class GenesisError(ValueError):
    """The genesis file is malformed; the message names the field and what to fix."""


@dataclass(frozen=True)
class ChainParams:
    """Block production parameters every node of the network shares."""

    block_interval_ms: int = 500
    max_tx_per_block: int = 2000
    heartbeat_ms: int = 0  # 0: no empty blocks while idle
    max_tx_gas: int = 3_000_000  # most gas one transaction may ask for
    max_block_gas: int = 50_000_000  # most gas one block may use


@dataclass(frozen=True)
class AccountAlloc:
    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class NodeEntry:
    """A member center's node named in genesis: validators vote, observers replicate."""

    name: str
    node_key: bytes  # the suite's public key (Ed25519: 32 bytes; SM2: 64 bytes x||y)
    power: int  # voting power; 0 for an observer


NODE_KEY_LENGTHS = {"standard": 32, "sm": 64}


@dataclass(frozen=True)
class Genesis:
    chain_id: int
    suite: str
    timestamp: int
    gas_limit: int
    extra_data: bytes
    params: ChainParams
    alloc: tuple[tuple[bytes, AccountAlloc], ...]
    authorised_senders: frozenset[bytes] = field(default_factory=frozenset)
    validators: tuple[NodeEntry, ...] = ()
    observers: tuple[NodeEntry, ...] = ()
    digest: str = ""  # sha256 of the canonical JSON this genesis was read from

    @property
    def member_keys(self) -> frozenset[bytes]:
        """Node keys allowed to connect: every validator and observer."""
        return frozenset(n.node_key for n in (*self.validators, *self.observers))

    @property
    def gas_target(self) -> int:
        """Most gas a block may use: EIP-1559's target, which keeps the base fee at zero."""
        return self.gas_limit // 2

    def genesis_params(self) -> dict[str, Any]:
        return {
            "difficulty": 0,
            "gas_limit": self.gas_limit,
            "timestamp": self.timestamp,
            "extra_data": self.extra_data,
            "base_fee_per_gas": 0,
            "nonce": b"\x00" * 8,
        }

    def genesis_state(self) -> dict[bytes, dict[str, Any]]:
        return {
            address: {
                "balance": acct.balance,
                "nonce": acct.nonce,
                "code": acct.code,
                "storage": dict(acct.storage),
            }
            for address, acct in self.alloc
        }


def _int(value: Any, where: str, *, lo: int = 0, hi: int = 2**256 - 1) -> int:
    if isinstance(value, bool):
        raise GenesisError(f"{where}: expected an integer or 0x-hex string, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        try:
            n = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError as exc:
            raise GenesisError(f"{where}: {value!r} is not a number") from exc
    else:
        raise GenesisError(f"{where}: expected an integer or 0x-hex string, got {value!r}")
    if not lo <= n <= hi:
        raise GenesisError(f"{where}: {n} is outside {lo}..{hi}")
    return n


def _bytes(value: Any, where: str, *, max_len: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise GenesisError(f"{where}: expected 0x-prefixed hex, got {value!r}")
    try:
        out = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise GenesisError(f"{where}: {value!r} is not valid hex") from exc
    if max_len is not None and len(out) > max_len:
        raise GenesisError(f"{where}: at most {max_len} bytes allowed, got {len(out)}")
    return out


def _address(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not is_hex_address(value):
        raise GenesisError(f"{where}: {value!r} is not a 20-byte 0x address")
    return bytes(to_canonical_address(value))


_ACCOUNT_KEYS = frozenset({"balance", "nonce", "code", "storage"})
def _nodes(doc: Any, where: str, suite: str, *, validators: bool) -> tuple[NodeEntry, ...]:
    if not isinstance(doc, list):
        fields_ = "name, nodeKey, power" if validators else "name, nodeKey"
        raise GenesisError(f"{where} must be a list of {{{fields_}}}")
    out: list[NodeEntry] = []
    for i, item in enumerate(doc):
        w = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise GenesisError(f"{w} must be an object")
        allowed = {"name", "nodeKey", "power"} if validators else {"name", "nodeKey"}
        if set(item) - allowed:
            raise GenesisError(f"{w}: unknown keys {sorted(set(item) - allowed)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise GenesisError(f"{w}.name must be a non-empty string")
        key = _bytes(item.get("nodeKey"), f"{w}.nodeKey")
        if len(key) != NODE_KEY_LENGTHS[suite]:
            raise GenesisError(f"{w}.nodeKey must be {NODE_KEY_LENGTHS[suite]} bytes for the "
                               f"{suite} suite, got {len(key)}")
        power = _int(item.get("power", 1), f"{w}.power", lo=1, hi=2**40) if validators else 0
        out.append(NodeEntry(name, key, power))
    return tuple(out)


_KNOWN = {"chainId", "suite", "timestamp", "gasLimit", "extraData", "params", "alloc",
          "authorisedSenders", "validators", "observers", "members", "name"}


def parse_genesis(doc: Mapping[str, Any]) -> Genesis:
    """Validate a genesis document and build a :class:`Genesis`. Raises GenesisError."""
    if not isinstance(doc, Mapping):
        raise GenesisError("genesis must be a JSON object")
    unknown = set(doc) - _KNOWN
    if unknown:
        raise GenesisError(f"unknown genesis fields {sorted(unknown)}; known: {sorted(_KNOWN)}")
    if "chainId" not in doc:
        raise GenesisError("chainId is required")
    chain_id = _int(doc["chainId"], "chainId", lo=1, hi=2**53)
    suite = doc.get("suite", "standard")
    if suite not in SUITES:
        raise GenesisError(f"suite: must be one of {SUITES}, got {suite!r}")
    raw_params = doc.get("params", {})
    if not isinstance(raw_params, Mapping):
        raise GenesisError("params must be an object")
    known_params = {"blockIntervalMs", "maxTxPerBlock", "heartbeatMs", "maxTxGas",
                    "maxBlockGas"}
    if set(raw_params) - known_params:
        raise GenesisError(f"params: unknown keys {sorted(set(raw_params) - known_params)}")
    gas_limit = _int(doc.get("gasLimit", 1_000_000_000), "gasLimit", lo=5000, hi=2**63 - 1)
    max_block_gas = _int(raw_params.get("maxBlockGas", min(DEFAULT_MAX_BLOCK_GAS,
                                                           gas_limit // 2)),
                         "params.maxBlockGas", lo=MIN_TX_GAS, hi=gas_limit // 2)
    max_tx_gas = _int(raw_params.get("maxTxGas", min(DEFAULT_MAX_TX_GAS, max_block_gas)),
                      "params.maxTxGas", lo=MIN_TX_GAS, hi=max_block_gas)
    params = ChainParams(
        max_tx_gas=max_tx_gas,
        max_block_gas=max_block_gas,
        block_interval_ms=_int(raw_params.get("blockIntervalMs", 500), "params.blockIntervalMs",
                               lo=10, hi=600_000),
        max_tx_per_block=_int(raw_params.get("maxTxPerBlock", 2000), "params.maxTxPerBlock",
                              lo=1, hi=100_000),
        heartbeat_ms=_int(raw_params.get("heartbeatMs", 0), "params.heartbeatMs",
                          lo=0, hi=86_400_000),
    )
    alloc_doc = doc.get("alloc", {})
    if not isinstance(alloc_doc, Mapping):
        raise GenesisError("alloc must be an object keyed by address")
    alloc: list[tuple[bytes, AccountAlloc]] = []
    seen: set[bytes] = set()
    for addr_text, acct in alloc_doc.items():
        where = f"alloc[{addr_text}]"
        address = _address(addr_text, where)
        if address in seen:
            raise GenesisError(f"{where}: this address is already in alloc (addresses are "
                               "case-insensitive); list each account once")
        seen.add(address)
        if not isinstance(acct, Mapping):
            raise GenesisError(f"{where} must be an object")
        unknown_keys = set(acct) - _ACCOUNT_KEYS
        if unknown_keys:
            raise GenesisError(f"{where}: unknown keys {sorted(unknown_keys)}; known: "
                               f"{sorted(_ACCOUNT_KEYS)}")
        storage_doc = acct.get("storage", {})
        if not isinstance(storage_doc, Mapping):
            raise GenesisError(f"{where}.storage must be an object")
        storage = tuple(sorted(
            (_int(k, f"{where}.storage key"), _int(v, f"{where}.storage[{k}]"))
            for k, v in storage_doc.items()
        ))
        alloc.append((address, AccountAlloc(
            balance=_int(acct.get("balance", 0), f"{where}.balance"),
            nonce=_int(acct.get("nonce", 0), f"{where}.nonce", hi=2**64 - 1),
            code=_bytes(acct.get("code", "0x"), f"{where}.code", max_len=24_576),
            storage=storage,
        )))
    alloc.sort(key=lambda item: item[0])
    senders = doc.get("authorisedSenders", [])
    if not isinstance(senders, list):
        raise GenesisError("authorisedSenders must be a list of addresses")
    validators = _nodes(doc.get("validators", []), "validators", suite, validators=True)
    observers = _nodes(doc.get("observers", []), "observers", suite, validators=False)
    keys = [n.node_key for n in (*validators, *observers)]
    names = [n.name for n in (*validators, *observers)]
    if len(set(keys)) != len(keys) or len(set(names)) != len(names):
        raise GenesisError("validators/observers: every node needs its own name and nodeKey")
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return Genesis(
        chain_id=chain_id,
        suite=suite,
        timestamp=_int(doc.get("timestamp", 0), "timestamp", hi=2**63 - 1),
        gas_limit=gas_limit,
        extra_data=_bytes(doc.get("extraData", "0x"), "extraData", max_len=32),
        params=params,
        alloc=tuple(alloc),
        authorised_senders=frozenset(
            _address(a, f"authorisedSenders[{i}]") for i, a in enumerate(senders)
        ),
        validators=validators,
        observers=observers,
        digest=hashlib.sha256(canonical).hexdigest(),
    )


def load_genesis(path: Path) -> Genesis:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise GenesisError(f"genesis file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise GenesisError(f"genesis file {path} is not valid JSON: {exc}") from exc
    return parse_genesis(doc)


class YilianVM(PragueVM):
    """Prague with one relaxation: a block's timestamp may equal its parent's.

    Ethereum requires strictly increasing seconds, which caps a chain at one block per
    second or makes timestamps run ahead of the clock. Consortium blocks come every few
    hundred milliseconds, so a block may share its parent's second. Everything else,
    execution included, is Prague unchanged, except two rules of
    :mod:`yilian.node.execution_limits`: the precompiles py-evm runs in pure Python cost
    more gas (so gas bounds their time), and execution stops part-way when a limit set by
    the caller is reached (the builder's deadline, an import's block gas cap; with none set
    it never does).
    """

    _state_class = YilianState

    def transaction_applied_hook(self, transaction_index: int,
                                 transactions: Sequence[SignedTransactionAPI],
                                 base_header: BlockHeaderAPI, partial_header: BlockHeaderAPI,
                                 computation: ComputationAPI, receipt: ReceiptAPI) -> None:
        check_block_gas(partial_header.gas_used)

    @classmethod
    def validate_header(cls, header: BlockHeaderAPI, parent_header: BlockHeaderAPI) -> None:
        if header.timestamp == parent_header.timestamp:
            # Let the standard checks run against a parent one second older; the only rule
            # that looks at the parent's timestamp is "strictly later".
            parent_header = parent_header.copy(timestamp=parent_header.timestamp - 1)
        super().validate_header(header, parent_header)


class YilianChainDB(ChainDB):
    """py-evm's chain database without its transaction-hash-to-block lookup.

    The node keeps its own index of committed transactions (:mod:`yilian.node.tx_index`),
    which answers every lookup by hash; py-evm's copy was an eighth of the database and
    only made LevelDB compact more. Nothing here asks py-evm for a transaction by hash (a
    final chain never reorganises, so the lookup is never removed either)."""

    @staticmethod
    def _add_transaction_to_canonical_chain(db: DatabaseAPI, transaction_hash: Hash32,
                                            block_header: BlockHeaderAPI, index: int) -> None:
        return None

    def get_transaction_index(self, transaction_hash: Hash32) -> tuple[BlockNumber, int]:
        raise TransactionNotFound(
            f"py-evm's transaction lookup is not kept: ask ChainCore.tx_record for "
            f"0x{transaction_hash.hex()}")


def chain_class(chain_id: int) -> type[Chain]:
    """The py-evm chain class for a network: YilianVM from block 0, the network's chain id."""
    return Chain.configure(
        __name__="YilianChain",
        vm_configuration=((0, YilianVM),),
        chaindb_class=YilianChainDB,
        chain_id=chain_id,
    )
