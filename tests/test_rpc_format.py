"""Tests for yilian.api.rpc_format against a real in-memory py-evm Prague chain.

The formatted results are pushed through ``json`` and then through web3.py's
own result formatters (directly, and via a ``Web3`` instance on a fake
provider), so anything web3 cannot digest fails here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import pytest
import rlp
from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.rlp.headers import BlockHeader
from eth.rlp.logs import Log
from eth.vm.forks.london.blocks import LondonBlockHeader
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Address, BlockNumber
from eth_utils import keccak, to_canonical_address, to_checksum_address
from hexbytes import HexBytes
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3
from web3._utils.encoding import Web3JsonEncoder
from web3._utils.method_formatters import PYTHONIC_RESULT_FORMATTERS, log_entry_formatter
from web3._utils.rpc_abi import RPC
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from yilian.api import rpc_format as F
from yilian.api import rpc_log_params as L
from yilian.api import rpc_params as P
from yilian.api.json_bytes import hex0x

CHAIN_ID = 1337
TOPIC = keccak(b"Ping()")
_LOG_BODY = bytes.fromhex("602a600052") + b"\x7f" + TOPIC + bytes.fromhex("60206000a1")
RUNTIME = _LOG_BODY + b"\x00"  # mstore 42; LOG1(topic) with 32 bytes of data; stop
assert len(RUNTIME) == 0x2C
# constructor: emit the same log, then return RUNTIME (appended at offset 0x37)
INIT_CODE = _LOG_BODY + bytes.fromhex("602c603760003960" + "2c6000f3") + RUNTIME
assert INIT_CODE.index(RUNTIME, len(_LOG_BODY)) == 0x37
REVERTING_INIT = bytes.fromhex("60006000fd")  # revert(0, 0)


def _json(value: Any) -> Any:
    """Force a JSON round trip, as the HTTP server will."""
    return json.loads(json.dumps(value))


def _web3_fmt(method: RPCEndpoint, value: Any) -> Any:
    """Apply web3.py's pythonic result formatter for ``method``."""
    return PYTHONIC_RESULT_FORMATTERS[method](_json(value))


@dataclass
class Sent:
    """One transaction as signed by eth_account and decoded by py-evm."""

    raw: bytes
    tx: SignedTransactionAPI
    request: dict[str, Any]
    signer: LocalAccount


@dataclass
class World:
    """A mined block 1 with one transaction of each interesting kind."""

    chain: MiningChain
    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    sent: list[Sent]
    sender: LocalAccount
    authority: LocalAccount
    contract: bytes

    def tx_json(self, i: int) -> dict[str, Any]:
        """The formatted ``eth_getTransactionByHash`` result of transaction ``i``."""
        header = self.block.header
        return F.format_transaction(
            self.block.transactions[i],
            chain_id=CHAIN_ID,
            block_hash=header.hash,
            block_number=header.block_number,
            index=i,
            base_fee=header.base_fee_per_gas,
            block_timestamp=header.timestamp,
        )

    def receipt_json(self, i: int) -> dict[str, Any]:
        """The formatted ``eth_getTransactionReceipt`` result of transaction ``i``."""
        header = self.block.header
        tx = self.block.transactions[i]
        return F.format_receipt(
            self.receipts[i],
            tx=tx,
            block_hash=header.hash,
            block_number=header.block_number,
            index=i,
            cumulative_gas_before=self.receipts[i - 1].gas_used if i else 0,
            log_index_start=sum(len(r.logs) for r in self.receipts[:i]),
            effective_gas_price=F.effective_gas_price(tx, header.base_fee_per_gas),
            block_timestamp=header.timestamp,
        )


@pytest.fixture(scope="module")
def world() -> World:
    """Build a Prague chain with zero base fee and mine one block of 7 txs."""
    sender = Account.from_key(b"\x01" * 32)
    authority = Account.from_key(b"\x02" * 32)
    other = to_checksum_address("0x" + "bb" * 20)
    chain_class = MiningChain.configure(
        __name__="RpcFormatTestChain", vm_configuration=((0, PragueVM),), chain_id=CHAIN_ID
    )
    genesis: Any = {
        "difficulty": 0,
        "gas_limit": 30_000_000,
        "timestamp": 1_700_000_000,
        "base_fee_per_gas": 0,
        "coinbase": b"\x00" * 20,
        "extra_data": b"yilian",
    }
    state: Any = {
        to_canonical_address(sender.address): {
            "balance": 10**24,
            "nonce": 0,
            "code": b"",
            "storage": {},
        }
    }
    chain = cast(MiningChain, chain_class.from_genesis(AtomicDB(), genesis, state))
    contract = keccak(rlp.encode([to_canonical_address(sender.address), 2]))[12:]
    auth = Account.sign_authorization(
        {"chainId": CHAIN_ID, "address": to_checksum_address(contract), "nonce": 0},
        authority.key,
    )
    key = "0x" + "00" * 31 + "05"
    requests: list[dict[str, Any]] = [
        # 0: EIP-155 legacy transfer
        {"chainId": CHAIN_ID, "nonce": 0, "gasPrice": 1, "gas": 21000, "to": other, "value": 7},
        # 1: EIP-2930 access-list transfer
        {
            "type": 1,
            "chainId": CHAIN_ID,
            "nonce": 1,
            "gasPrice": 2,
            "gas": 30000,
            "to": other,
            "value": 8,
            "accessList": [{"address": other, "storageKeys": [key]}],
        },
        # 2: EIP-1559 contract creation whose constructor logs
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": 2,
            "maxFeePerGas": 10,
            "maxPriorityFeePerGas": 3,
            "gas": 200_000,
            "value": 0,
            "data": INIT_CODE,
        },
        # 3: EIP-1559 creation that reverts (status 0)
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": 3,
            "maxFeePerGas": 10,
            "maxPriorityFeePerGas": 3,
            "gas": 100_000,
            "value": 0,
            "data": REVERTING_INIT,
        },
        # 4: EIP-7702 set-code tx calling the (now delegated) authority, which logs
        {
            "type": 4,
            "chainId": CHAIN_ID,
            "nonce": 4,
            "maxFeePerGas": 10,
            "maxPriorityFeePerGas": 10,
            "gas": 200_000,
            "to": authority.address,
            "value": 0,
            "data": b"",
            "accessList": [],
            "authorizationList": [auth],
        },
        # 5: EIP-1559 transfer paying a tip below the fee cap
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": 5,
            "maxFeePerGas": 10,
            "maxPriorityFeePerGas": 3,
            "gas": 22000,
            "to": other,
            "value": 9,
            "data": b"\x01\x02",
        },
        # 6: pre-EIP-155 (unprotected) legacy transfer
        {"nonce": 6, "gasPrice": 1, "gas": 25000, "to": other, "value": 1},
    ]
    builder = PragueVM.get_transaction_builder()
    sent = []
    for request in requests:
        signed = Account.sign_transaction(request, sender.key)
        raw = bytes(signed.raw_transaction)
        tx = builder.decode(raw)
        chain.apply_transaction(tx)
        sent.append(Sent(raw=raw, tx=tx, request=request, signer=sender))
    block = chain.mine_block()
    mined = chain.get_canonical_block_by_number(BlockNumber(block.number))
    return World(
        chain=chain,
        block=mined,
        receipts=mined.get_receipts(chain.chaindb),
        sent=sent,
        sender=sender,
        authority=authority,
        contract=contract,
    )


# ---------------------------------------------------------------------------
# transactions
# ---------------------------------------------------------------------------


def _resign(formatted: dict[str, Any], signer: LocalAccount) -> bytes:
    """Rebuild the unsigned tx from web3-formatted fields and sign it again.

    Signing is deterministic (RFC 6979), so this reproduces the original raw
    bytes iff every signed field was reported correctly.
    """
    kind = formatted["type"]
    req: dict[str, Any] = {
        "nonce": formatted["nonce"],
        "gas": formatted["gas"],
        "to": formatted["to"] or b"",
        "value": formatted["value"],
        "data": bytes(formatted["input"]),
    }
    if kind == 0:
        req["gasPrice"] = formatted["gasPrice"]
        if "chainId" in formatted:
            req["chainId"] = formatted["chainId"]
    else:
        req["type"] = kind
        req["chainId"] = formatted["chainId"]
        req["accessList"] = [dict(e) for e in formatted["accessList"]]
        if kind == 1:
            req["gasPrice"] = formatted["gasPrice"]
        else:
            req["maxFeePerGas"] = formatted["maxFeePerGas"]
            req["maxPriorityFeePerGas"] = formatted["maxPriorityFeePerGas"]
        if kind == 4:
            req["authorizationList"] = [dict(a) for a in formatted["authorizationList"]]
        if kind == 3:
            req["maxFeePerBlobGas"] = formatted["maxFeePerBlobGas"]
            req["blobVersionedHashes"] = [bytes(h) for h in formatted["blobVersionedHashes"]]
    if not req["to"]:
        del req["to"]
    return bytes(Account.sign_transaction(req, signer.key).raw_transaction)


def test_transactions_round_trip_through_web3(world: World) -> None:
    """Every tx formats, survives web3's formatter, and re-signs to the same bytes."""
    header = world.block.header
    assert len(world.block.transactions) == len(world.sent)
    for i, sent in enumerate(world.sent):
        tx = world.block.transactions[i]
        raw_json = world.tx_json(i)
        out = _web3_fmt(RPC.eth_getTransactionByHash, raw_json)
        kind = sent.request.get("type", 0)
        assert out["hash"] == HexBytes(keccak(sent.raw)) == HexBytes(tx.hash)
        assert out["from"] == sent.signer.address
        assert out["type"] == kind
        assert out["nonce"] == sent.request["nonce"]
        assert out["value"] == sent.request["value"]
        assert out["gas"] == sent.request["gas"]
        assert out["blockHash"] == HexBytes(header.hash)
        assert out["blockNumber"] == 1 and out["transactionIndex"] == i
        assert bytes(out["input"]) == bytes(sent.request.get("data", b""))
        assert _resign(out, sent.signer) == sent.raw, f"tx {i} fields do not round-trip"
        signed = Account.sign_transaction(sent.request, sent.signer.key)
        assert int.from_bytes(out["r"], "big") == signed.r
        assert int.from_bytes(out["s"], "big") == signed.s
        assert out["v"] == signed.v
        # the JSON keys are exactly geth's (>= 1.16) per type
        base = {
            "blockHash", "blockNumber", "blockTimestamp", "from", "gas", "gasPrice", "hash",
            "input", "nonce", "to", "transactionIndex", "value", "type", "v", "r", "s",
        }  # fmt: skip
        typed = {"accessList", "chainId", "yParity"}
        fees = {"maxFeePerGas", "maxPriorityFeePerGas"}
        expected = {
            0: base | ({"chainId"} if "chainId" in sent.request else set()),
            1: base | typed,
            2: base | typed | fees,
            4: base | typed | fees | {"authorizationList"},
        }[kind]
        assert set(raw_json) == expected, f"tx {i}"
        # all hex quantities are canonical
        for key in ("gas", "nonce", "value", "gasPrice", "type", "v", "r", "s"):
            assert P.quantity(raw_json[key], key) >= 0


def test_transaction_specifics(world: World) -> None:
    """v/chainId per type, effective gasPrice, creation `to`, access/auth lists."""
    legacy, access, create, _, setcode, dyn, unprotected = (world.tx_json(i) for i in range(7))
    assert legacy["v"] in (hex(CHAIN_ID * 2 + 35), hex(CHAIN_ID * 2 + 36))
    assert legacy["chainId"] == hex(CHAIN_ID)
    assert unprotected["v"] in ("0x1b", "0x1c") and "chainId" not in unprotected
    assert "yParity" not in legacy
    assert access["accessList"] == [
        {"address": "0x" + "bb" * 20, "storageKeys": ["0x" + "00" * 31 + "05"]}
    ]
    assert access["gasPrice"] == "0x2" and access["v"] == access["yParity"]
    assert create["to"] is None
    # base fee 0: effective = min(maxFee=10, 0 + tip=3) = 3
    assert world.block.header.base_fee_per_gas == 0
    assert dyn["gasPrice"] == "0x3" and dyn["maxFeePerGas"] == "0xa"
    assert setcode["gasPrice"] == "0xa"
    assert setcode["to"] == "0x" + to_canonical_address(world.authority.address).hex()
    (auth,) = setcode["authorizationList"]
    assert auth["address"] == "0x" + world.contract.hex()
    assert auth["chainId"] == hex(CHAIN_ID) and auth["nonce"] == "0x0"
    # addresses are lowercase, like geth
    assert legacy["from"] == legacy["from"].lower()
    # pending form: no block position; gasPrice falls back to maxFeePerGas
    pending = F.format_transaction(world.block.transactions[5], chain_id=CHAIN_ID)
    assert pending["blockHash"] is None and pending["transactionIndex"] is None
    assert pending["gasPrice"] == "0xa"
    out = _web3_fmt(RPC.eth_getTransactionByHash, pending)
    assert out["blockNumber"] is None


def test_blob_transaction_format() -> None:
    """Type-3 txs (decodable under Prague, not mined here) carry the blob fields."""
    signer = Account.from_key(b"\x03" * 32)
    request = {
        "type": 3,
        "chainId": CHAIN_ID,
        "nonce": 0,
        "maxFeePerGas": 10,
        "maxPriorityFeePerGas": 1,
        "maxFeePerBlobGas": 5,
        "gas": 21000,
        "to": to_checksum_address("0x" + "cc" * 20),
        "value": 0,
        "data": b"",
        "accessList": [],
        "blobVersionedHashes": [b"\x01" + b"\x00" * 31],
    }
    raw = bytes(Account.sign_transaction(request, signer.key).raw_transaction)
    tx = PragueVM.get_transaction_builder().decode(raw)
    raw_json = F.format_transaction(
        tx, chain_id=CHAIN_ID, block_hash=b"\x01" * 32, block_number=9, index=0, base_fee=4,
        block_timestamp=7,
    )
    assert raw_json["maxFeePerBlobGas"] == "0x5" and raw_json["gasPrice"] == "0x5"
    assert raw_json["blobVersionedHashes"] == ["0x01" + "00" * 31]
    out = _web3_fmt(RPC.eth_getTransactionByHash, raw_json)
    assert out["hash"] == HexBytes(keccak(raw)) and out["from"] == signer.address
    assert _resign(out, signer) == raw


# ---------------------------------------------------------------------------
# receipts and logs
# ---------------------------------------------------------------------------


def test_receipts_round_trip_through_web3(world: World) -> None:
    """Receipts format, survive web3, and their gas/log accounting is consistent."""
    header = world.block.header
    total_gas = 0
    log_index = 0
    bloom = 0
    for i, sent in enumerate(world.sent):
        raw_json = world.receipt_json(i)
        out = _web3_fmt(RPC.eth_getTransactionReceipt, raw_json)
        assert out["transactionHash"] == HexBytes(keccak(sent.raw))
        assert out["transactionIndex"] == i and out["blockNumber"] == 1
        assert out["blockHash"] == HexBytes(header.hash)
        assert out["from"] == sent.signer.address
        assert out["type"] == sent.request.get("type", 0)
        total_gas += out["gasUsed"]
        assert out["cumulativeGasUsed"] == total_gas
        for log in out["logs"]:
            assert log["logIndex"] == log_index
            assert log["transactionHash"] == out["transactionHash"]
            assert log["transactionIndex"] == i
            log_index += 1
        bloom |= int.from_bytes(out["logsBloom"], "big")
        assert out["status"] == (0 if i == 3 else 1), f"tx {i}"
    assert total_gas == header.gas_used
    assert bloom == header.bloom

    legacy, access, create, reverted, setcode, dyn, _ = (
        _web3_fmt(RPC.eth_getTransactionReceipt, world.receipt_json(i)) for i in range(7)
    )
    assert legacy["gasUsed"] == 21000 and legacy["effectiveGasPrice"] == 1
    assert access["gasUsed"] == 21000 + 2400 + 1900
    assert dyn["effectiveGasPrice"] == 3
    assert legacy["contractAddress"] is None and legacy["to"] == legacy["to"]
    assert create["to"] is None
    assert create["contractAddress"] == to_checksum_address(world.contract)
    state = world.chain.get_vm().state
    assert state.get_code(Address(world.contract)) == RUNTIME
    (clog,) = create["logs"]
    assert clog["address"] == to_checksum_address(world.contract)
    assert clog["topics"] == [HexBytes(TOPIC)]
    assert clog["data"] == HexBytes((42).to_bytes(32, "big"))
    assert reverted["logs"] == [] and reverted["contractAddress"] is not None
    (dlog,) = setcode["logs"]  # delegated code runs at the authority's address
    assert dlog["address"] == world.authority.address
    assert world.receipt_json(3)["status"] == "0x0"


def test_format_log_and_web3_log_formatter(world: World) -> None:
    """format_log output is accepted by web3's log formatter."""
    log = world.receipts[2].logs[0]
    raw_json = F.format_log(
        log,
        block_hash=b"\x11" * 32,
        block_number=1,
        tx_hash=b"\x22" * 32,
        tx_index=2,
        log_index=0,
        block_timestamp=5,
    )
    assert raw_json["removed"] is False and raw_json["blockTimestamp"] == "0x5"
    assert raw_json["topics"] == ["0x" + TOPIC.hex()]
    out = log_entry_formatter(_json(raw_json))
    assert out["address"] == to_checksum_address(world.contract)
    pending = F.format_log(
        log, block_hash=None, block_number=None, tx_hash=None, tx_index=None, log_index=0
    )
    assert pending["blockHash"] is None and "blockTimestamp" not in pending
    log_entry_formatter(_json(pending))


# ---------------------------------------------------------------------------
# blocks and headers
# ---------------------------------------------------------------------------


def _header_from_json(h: dict[str, Any]) -> PragueBlockHeader:
    """Rebuild a Prague header from formatted JSON (for hash verification)."""

    def b(key: str) -> bytes:
        return bytes.fromhex(h[key][2:])

    def n(key: str) -> int:
        return int(h[key], 16)

    fields: dict[str, Any] = dict(
        difficulty=n("difficulty"),
        block_number=n("number"),
        gas_limit=n("gasLimit"),
        timestamp=n("timestamp"),
        coinbase=b("miner"),
        parent_hash=b("parentHash"),
        uncles_hash=b("sha3Uncles"),
        state_root=b("stateRoot"),
        transaction_root=b("transactionsRoot"),
        receipt_root=b("receiptsRoot"),
        bloom=n("logsBloom"),
        gas_used=n("gasUsed"),
        extra_data=b("extraData"),
        mix_hash=b("mixHash"),
        nonce=b("nonce"),
        base_fee_per_gas=n("baseFeePerGas"),
        withdrawals_root=b("withdrawalsRoot"),
        blob_gas_used=n("blobGasUsed"),
        excess_blob_gas=n("excessBlobGas"),
        parent_beacon_block_root=b("parentBeaconBlockRoot"),
        requests_hash=b("requestsHash"),
    )
    return PragueBlockHeader(**fields)


@pytest.mark.parametrize("full", [False, True])
def test_block_round_trip_through_web3(world: World, full: bool) -> None:
    """Blocks format (hashes or full txs), survive web3, and rehash to the same hash."""
    block = world.block
    raw_json = F.format_block(block, full_transactions=full, chain_id=CHAIN_ID)
    out = _web3_fmt(RPC.eth_getBlockByNumber, raw_json)
    assert out["number"] == 1 and out["hash"] == HexBytes(block.header.hash)
    assert out["size"] == len(rlp.encode(block))
    assert out["uncles"] == [] and out["withdrawals"] == []
    assert out["totalDifficulty"] == 0 and out["baseFeePerGas"] == 0
    assert out["gasUsed"] == block.header.gas_used
    assert bytes(out["extraData"]) == block.header.extra_data
    assert len(raw_json["nonce"]) == 2 + 16 and len(raw_json["logsBloom"]) == 2 + 512
    hashes = [HexBytes(keccak(s.raw)) for s in world.sent]
    if full:
        assert [t["hash"] for t in out["transactions"]] == hashes
        assert [t["transactionIndex"] for t in out["transactions"]] == list(range(7))
        assert raw_json["transactions"][5] == world.tx_json(5)
    else:
        assert out["transactions"] == hashes
    assert _header_from_json(raw_json).hash == block.header.hash
    genesis = world.chain.get_canonical_block_by_number(BlockNumber(0))
    gen_json = F.format_block(genesis, full_transactions=True, chain_id=CHAIN_ID)
    assert gen_json["transactions"] == [] and gen_json["number"] == "0x0"
    assert gen_json["extraData"] == "0x" + b"yilian".hex()
    assert _header_from_json(gen_json).hash == genesis.header.hash
    assert raw_json["parentHash"] == gen_json["hash"]


def test_older_headers_omit_later_fork_fields() -> None:
    """Frontier and London headers format without the fields they lack."""
    frontier = BlockHeader(difficulty=1, block_number=3, gas_limit=8_000_000, timestamp=1)
    out = F.format_header(frontier)
    for key in ("baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "requestsHash", "size"):
        assert key not in out
    _web3_fmt(RPC.eth_getBlockByNumber, out | {"transactions": [], "uncles": []})
    london = LondonBlockHeader(
        difficulty=1, block_number=BlockNumber(3), gas_limit=8_000_000, timestamp=1
    )
    out = F.format_header(london, size=500)
    assert int(out["baseFeePerGas"], 16) == london.base_fee_per_gas
    assert out["size"] == "0x1f4"
    assert "withdrawalsRoot" not in out and "parentBeaconBlockRoot" not in out


# ---------------------------------------------------------------------------
# full web3 stack on a fake provider
# ---------------------------------------------------------------------------


class _FakeProvider(BaseProvider):
    """Answers a few eth_* methods from formatted results (JSON round-tripped)."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        w = self.world
        params = json.loads(json.dumps(params, cls=Web3JsonEncoder))  # as on the wire
        hashes = [bytes(t.hash) for t in w.block.transactions]
        result: Any
        if method == "eth_chainId":
            result = F.hexq(CHAIN_ID)
        elif method == "eth_getBlockByNumber":
            number = P.block_number_or_tag(params[0], "params[0]")
            assert number in (1, "latest")
            result = F.format_block(
                w.block, full_transactions=P.boolean(params[1], "params[1]"), chain_id=CHAIN_ID
            )
        elif method in ("eth_getTransactionByHash", "eth_getTransactionReceipt"):
            i = hashes.index(P.hash32(params[0], "params[0]"))
            result = w.tx_json(i) if method == "eth_getTransactionByHash" else w.receipt_json(i)
        elif method == "eth_getLogs":
            flt = L.log_filter(params[0], "params[0]")
            result = []
            for i, receipt in enumerate(w.receipts):
                start = sum(len(r.logs) for r in w.receipts[:i])
                for j, log in enumerate(receipt.logs):
                    if F.log_matches(log, flt.address_set, flt.topics):
                        result.append(
                            F.format_log(
                                log,
                                block_hash=w.block.header.hash,
                                block_number=1,
                                tx_hash=hashes[i],
                                tx_index=i,
                                log_index=start + j,
                            )
                        )
        else:
            raise AssertionError(f"unexpected method {method}")
        return {"jsonrpc": "2.0", "id": 1, "result": _json(result)}


def test_web3_end_to_end(world: World) -> None:
    """web3.eth.get_block / get_transaction / get_transaction_receipt / get_logs."""
    w3 = Web3(_FakeProvider(world))
    block = w3.eth.get_block(1, full_transactions=True)
    assert block["hash"] == HexBytes(world.block.header.hash)
    tx_hash = keccak(world.sent[2].raw)
    tx = w3.eth.get_transaction(HexBytes(tx_hash))
    assert tx["from"] == world.sender.address and tx["to"] is None
    receipt = w3.eth.get_transaction_receipt(HexBytes(tx_hash))
    assert receipt["status"] == 1
    assert receipt["contractAddress"] == to_checksum_address(world.contract)
    logs = w3.eth.get_logs({"fromBlock": 1, "toBlock": 1, "topics": [TOPIC]})
    assert [log["address"] for log in logs] == [
        to_checksum_address(world.contract),
        world.authority.address,
    ]
    assert [log["logIndex"] for log in logs] == [0, 1]
    only = w3.eth.get_logs({"fromBlock": 1, "address": world.authority.address})
    assert len(only) == 1 and only[0]["transactionIndex"] == 4


# ---------------------------------------------------------------------------
# log_matches and hexq
# ---------------------------------------------------------------------------

_addrs = st.sampled_from([b"\x01" * 20, b"\x02" * 20, b"\x03" * 20])
_topic_ints = st.sampled_from([0, 1, 2, 2**256 - 1])
_logs = st.builds(
    Log, address=_addrs, topics=st.lists(_topic_ints, max_size=4).map(tuple), data=st.just(b"")
)


def _b32(n: int) -> bytes:
    return n.to_bytes(32, "big")


@given(log=_logs, data=st.data())
def test_log_matches_selecting_own_topics(log: Log, data: st.DataObject) -> None:
    """A filter built from the log itself (with wildcards / extra ORs) matches it."""
    n = data.draw(st.integers(0, len(log.topics)))
    flt: list[bytes | list[bytes] | None] = []
    for t in log.topics[:n]:
        flt.append(
            data.draw(
                st.sampled_from(
                    [None, _b32(t), [_b32(t)], [_b32(7), _b32(t)], []],
                )
            )
        )
    assert F.log_matches(log, None, flt)
    assert F.log_matches(log, {log.address, b"\x09" * 20}, flt)
    assert not F.log_matches(log, {b"\x09" * 20}, flt)
    assert F.log_matches(log, set(), flt)  # empty address set = any address


@given(log=_logs, data=st.data())
def test_log_matches_rejects_wrong_topic(log: Log, data: st.DataObject) -> None:
    """A position that excludes the log's topic, or extends past its topics, rejects it."""
    if log.topics:
        i = data.draw(st.integers(0, len(log.topics) - 1))
        flt: list[Any] = [None] * i + [[_b32(7)]]
        assert not F.log_matches(log, None, flt)
        assert not F.log_matches(log, None, [None] * i + [_b32(7)])
    assert not F.log_matches(log, None, [None] * (len(log.topics) + 1))


def test_log_matches_with_parsed_filter() -> None:
    """rpc_params.log_filter output plugs straight into log_matches."""
    log = Log(b"\x01" * 20, (1, 2), b"")
    flt = L.log_filter(
        {"address": ["0x" + "01" * 20], "topics": [None, ["0x" + _b32(2).hex()]]}, "p"
    )
    assert F.log_matches(log, flt.address_set, flt.topics)
    flt = L.log_filter({"topics": [None, None, None]}, "p")
    assert not F.log_matches(log, flt.address_set, flt.topics)


@given(n=st.integers(min_value=0, max_value=2**300))
def test_hexq_canonical(n: int) -> None:
    """hexq emits canonical QUANTITY strings."""
    s = F.hexq(n)
    assert s.startswith("0x") and int(s, 16) == n
    assert s == "0x0" or s[2] != "0"


def test_hexq_rejects_bad_input() -> None:
    """Negative numbers and bools are programming errors."""
    with pytest.raises(ValueError):
        F.hexq(-1)
    with pytest.raises(TypeError):
        F.hexq(True)
    assert hex0x(b"") == "0x" and hex0x(b"\xab") == "0xab"
