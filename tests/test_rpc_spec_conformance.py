"""Every JSON-RPC method the node implements answers what the Ethereum JSON-RPC spec says.

The spec is ethereum/execution-apis, assembled into one dereferenced OpenRPC document kept
in ``tests/spec/execution-apis-openrpc.json`` (see ``tests/spec/README.md`` for the commit
and how it is rebuilt). Each case below calls one method on a real node (in process, real
LevelDB, blocks built from real signed transactions of types 0, 1 and 2, a contract
creation, logs and receipts) over HTTP and validates the result against the method's
result schema. The params sent are checked against the spec's param schemas first, so the
cases use only spec-legal input (e.g. a plain block hash where ``BlockNumberOrTagOrHash``
allows one).

Methods the spec does not define are listed in :data:`NOT_IN_SPEC` with the reason, and
checked against the spec's base types where the result has one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator, ValidationError

import yilian.api.rpc_params as P
from tests.helpers import (
    _RECORD_STORE,
    ADDRESSES,
    KEYS,
    make_client,
    make_node,
    produce_all,
    rpc_body,
    sign,
    sign_put,
    sign_transfer,
)
from yilian.api.rpc import RpcHandler
from yilian.network_configs.local import LOCAL_CHAIN_ID, RECORD_STORE_ADDRESS
from yilian.node.service import Node

SPEC_FILE = Path(__file__).parent / "spec" / "execution-apis-openrpc.json"
SPEC: dict[str, Any] = json.loads(SPEC_FILE.read_text())
METHODS: dict[str, dict[str, Any]] = {m["name"]: m for m in SPEC["methods"]}
TYPES: dict[str, Any] = SPEC["components"]["schemas"]

# Implemented, but not defined by execution-apis (src/eth): why, and the spec base type the
# result is checked against (None: no check).
NOT_IN_SPEC: dict[str, tuple[str, str | None]] = {
    "web3_clientVersion": ("web3_* is not in execution-apis (legacy wiki API)", None),
    "web3_sha3": ("web3_* is not in execution-apis (legacy wiki API)", "hash32"),
    "net_listening": ("only net_version is in execution-apis", None),
    "net_peerCount": ("only net_version is in execution-apis", "uint"),
    "eth_mining": ("proof-of-work method, dropped from execution-apis", None),
    "eth_hashrate": ("proof-of-work method, dropped from execution-apis", "uint"),
    "eth_getUncleCountByBlockNumber": ("uncles are gone since the merge; not in "
                                       "execution-apis", "uint"),
    "eth_getUncleCountByBlockHash": ("uncles are gone since the merge; not in "
                                     "execution-apis", "uint"),
    "yilian_getCommitCertificate": ("yilian's own method (the BFT commit certificate of a "
                                    "block); no Ethereum schema exists", None),
}

ZERO_HASH = "0x" + "00" * 32


@dataclass
class World:
    node: Node
    http: TestClient
    block1: dict[str, Any]  # eth_getBlockByNumber("0x1", false)
    block2: dict[str, Any]
    txs: list[str]  # hashes of the mined transactions, block 1 then block 2
    pending: str  # a transaction waiting in the mempool (its nonce gap is open)
    creation: str  # the contract creation's hash

    def call(self, method: str, params: list[Any]) -> dict[str, Any]:
        resp = self.http.post("/rpc", json=rpc_body(method, params))
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = make_node(tmp_path_factory.mktemp("spec"))
    http = make_client(node)
    try:
        creation = sign(KEYS[3], {"type": 2, "chainId": LOCAL_CHAIN_ID, "nonce": 0, "to": b"",
                                  "value": 0, "gas": 100_000, "maxFeePerGas": 0,
                                  "maxPriorityFeePerGas": 0,
                                  "data": bytes.fromhex("600a600c600039600a6000f3"
                                                        "602a60005260206000f3")})
        first = [sign_transfer(KEYS[0], 0, tx_type=0),  # legacy, EIP-155
                 sign_transfer(KEYS[1], 0, tx_type=1),  # EIP-2930
                 sign_put(KEYS[2], 0, b"spec", b"one"),  # EIP-1559, emits a log
                 creation]
        for raw in first:
            node.submit(raw)
        assert produce_all(node) is not None
        second = [sign_put(KEYS[2], 1, b"spec", b"two"), sign_transfer(KEYS[0], 1, tx_type=2)]
        for raw in second:
            node.submit(raw)
        assert produce_all(node) is not None
        # nonce 1 before nonce 0: waits in the mempool, never mined here
        pending = "0x" + node.submit(sign_transfer(KEYS[4], 1, tx_type=2)).hex()
        w = World(node, http, {}, {}, [], pending, "")
        w.block1 = w.call("eth_getBlockByNumber", ["0x1", False])["result"]
        w.block2 = w.call("eth_getBlockByNumber", ["0x2", False])["result"]
        w.txs = [*w.block1["transactions"], *w.block2["transactions"]]
        assert len(w.txs) == 6
        w.creation = w.txs[3]
        yield w
    finally:
        http.close()
        node.stop()


def _filter_then(kind: str) -> Callable[[World], list[list[Any]]]:
    """Params for a filter method on a freshly installed filter that saw a new block."""
    def make(w: World) -> list[list[Any]]:
        ids = [w.call("eth_newFilter", [{"fromBlock": "0x0", "toBlock": "latest",
                                         "address": RECORD_STORE_ADDRESS}])["result"],
               w.call("eth_newBlockFilter", [])["result"]]
        if kind == "changes":
            w.node.submit(sign_put(KEYS[5], _nonce(w, 5), b"spec", b"filter"))
            assert produce_all(w.node) is not None
        return [[i] for i in ids] if kind != "logs" else [[ids[0]]]
    return make


def _nonce(w: World, i: int) -> int:
    return int(w.call("eth_getTransactionCount", [ADDRESSES[i], "pending"])["result"], 16)


def _call_data(key: bytes) -> str:
    return str(_RECORD_STORE.encode_abi("get", args=[key.ljust(32, b"\0")]))


STORE = to_checksum_address(RECORD_STORE_ADDRESS)

# method -> a function of the world giving the param lists to call it with
CASES: dict[str, Callable[[World], list[list[Any]]]] = {
    "web3_clientVersion": lambda w: [[]],
    "web3_sha3": lambda w: [["0x68656c6c6f"]],
    "net_version": lambda w: [[]],
    "net_listening": lambda w: [[]],
    "net_peerCount": lambda w: [[]],
    "eth_chainId": lambda w: [[]],
    "eth_syncing": lambda w: [[]],
    "eth_accounts": lambda w: [[]],
    "eth_coinbase": lambda w: [[]],
    "eth_mining": lambda w: [[]],
    "eth_hashrate": lambda w: [[]],
    "eth_gasPrice": lambda w: [[]],
    "eth_maxPriorityFeePerGas": lambda w: [[]],
    "eth_blobBaseFee": lambda w: [[]],
    "eth_blockNumber": lambda w: [[]],
    "eth_feeHistory": lambda w: [["0x2", "latest", []], ["0x4", "latest", [25.0, 75.0]],
                                 ["0x1", "0x1", [50]]],
    "eth_getBalance": lambda w: [[ADDRESSES[0], "latest"], [ADDRESSES[0], "0x1"],
                                 [ADDRESSES[0], w.block1["hash"]]],
    "eth_getTransactionCount": lambda w: [[ADDRESSES[0], "latest"], [ADDRESSES[0], "pending"],
                                          [ADDRESSES[0], w.block1["hash"]]],
    "eth_getCode": lambda w: [[STORE, "latest"], [ADDRESSES[0], "earliest"],
                              [STORE, w.block2["hash"]]],
    "eth_getStorageAt": lambda w: [[STORE, "0x0", "latest"], [STORE, "0x1", w.block2["hash"]]],
    "eth_getProof": lambda w: [[STORE, ["0x" + "00" * 32], "latest"],
                               [ADDRESSES[0], [], w.block1["hash"]]],
    "eth_getBlockByNumber": lambda w: [["0x1", False], ["0x1", True], ["0x2", True],
                                       ["0x0", False], ["latest", True], ["0x99", False]],
    "eth_getBlockByHash": lambda w: [[w.block1["hash"], True], [w.block2["hash"], False],
                                     [ZERO_HASH, False]],
    "eth_getBlockTransactionCountByNumber": lambda w: [["0x1"], ["latest"], ["0x99"]],
    "eth_getBlockTransactionCountByHash": lambda w: [[w.block1["hash"]], [ZERO_HASH]],
    "eth_getTransactionByBlockNumberAndIndex": lambda w: [["0x1", hex(i)] for i in range(4)]
    + [["0x1", "0x9"]],
    "eth_getTransactionByBlockHashAndIndex": lambda w: [[w.block2["hash"], "0x0"],
                                                        [w.block2["hash"], "0x1"],
                                                        [ZERO_HASH, "0x0"]],
    "eth_getUncleCountByBlockNumber": lambda w: [["0x1"]],
    "eth_getUncleCountByBlockHash": lambda w: [[w.block1["hash"]]],
    "eth_getTransactionByHash": lambda w: [[h] for h in w.txs] + [[ZERO_HASH]],
    "eth_getTransactionReceipt": lambda w: [[h] for h in w.txs] + [[ZERO_HASH]],
    "eth_getBlockReceipts": lambda w: [["0x1"], ["latest"], [w.block1["hash"]], ["0x99"]],
    "eth_sendRawTransaction": lambda w: [["0x" + sign_transfer(KEYS[6], _nonce(w, 6)).hex()]],
    "eth_call": lambda w: [[{"to": STORE, "input": _call_data(b"spec")}, "latest"],
                           [{"to": STORE, "input": _call_data(b"spec")}, w.block1["hash"]],
                           [{"from": ADDRESSES[0], "to": ADDRESSES[1], "value": "0x1"}]],
    "eth_estimateGas": lambda w: [[{"from": ADDRESSES[0], "to": ADDRESSES[1], "value": "0x1"}],
                                  [{"to": STORE, "input": _call_data(b"spec")}, "latest"]],
    "eth_getLogs": lambda w: [[{"fromBlock": "0x0", "toBlock": "latest"}],
                              [{"blockHash": w.block1["hash"]}],
                              [{"address": STORE, "fromBlock": "0x2"}],
                              [{"address": ADDRESSES[0]}]],
    "eth_newFilter": lambda w: [[{"fromBlock": "0x0", "address": STORE}], [{}]],
    "eth_newBlockFilter": lambda w: [[]],
    "eth_getFilterChanges": _filter_then("changes"),
    "eth_getFilterLogs": _filter_then("logs"),
    "eth_uninstallFilter": lambda w: [[w.call("eth_newBlockFilter", [])["result"]]],
    "yilian_getCommitCertificate": lambda w: [["0x1"]],
}


def test_every_implemented_method_has_a_case(world: World) -> None:
    handler = RpcHandler(world.node)
    implemented = set(handler.method_names())
    assert implemented == set(CASES), (
        f"methods without a case: {sorted(implemented - set(CASES))}; "
        f"cases for methods not served: {sorted(set(CASES) - implemented)}")
    for name in implemented:
        assert (name in METHODS) != (name in NOT_IN_SPEC), (
            f"{name}: either the spec defines it or NOT_IN_SPEC says why not")


def _spec_ambiguity(error: ValidationError, value: Any) -> bool:
    """The spec's own ambiguity: a result that is ``oneOf`` two array types (hashes or
    logs: ``eth_getLogs``, ``eth_getFilterChanges``, ``eth_getFilterLogs``) makes an empty
    array match both, which strict ``oneOf`` refuses. An empty array is valid under each
    alternative, so it is accepted; any other value is still checked under ``oneOf``."""
    return error.validator == "oneOf" and not error.path and value == []


def _validate(schema: dict[str, Any], value: Any, what: str) -> None:
    errors = sorted((e for e in Draft7Validator(schema).iter_errors(value)
                     if not _spec_ambiguity(e, value)), key=lambda e: list(e.path))
    if errors:
        detail = "\n".join(f"  at {'/'.join(map(str, e.path)) or '(top)'}: {e.message[:300]}"
                           for e in errors[:10])
        pytest.fail(f"{what} does not match the spec:\n{detail}\nvalue: "
                    f"{json.dumps(value)[:1500]}")


@pytest.mark.parametrize("method", sorted(CASES))
def test_result_matches_the_spec(world: World, method: str) -> None:
    if method in NOT_IN_SPEC:
        reason, base_type = NOT_IN_SPEC[method]
        if base_type is None:
            pytest.skip(f"{method}: {reason}")
    for params in CASES[method](world):
        what = f"{method}({json.dumps(params)[:200]})"
        if method in METHODS:
            for i, (value, spec_param) in enumerate(zip(params, METHODS[method]["params"],
                                                        strict=False)):
                _validate(spec_param["schema"], value, f"param {i} of {what} (test input)")
        answer = world.call(method, params)
        assert "result" in answer, f"{what} answered {answer}"
        if method in METHODS:
            _validate(METHODS[method]["result"]["schema"], answer["result"], f"result of {what}")
        else:
            base_type = NOT_IN_SPEC[method][1]
            assert base_type is not None
            _validate(TYPES[base_type], answer["result"], f"result of {what}")


def test_mined_transactions_and_logs_carry_the_block_timestamp(world: World) -> None:
    stamp = world.block1["timestamp"]
    tx = world.call("eth_getTransactionByHash", [world.txs[2]])["result"]
    assert tx["blockTimestamp"] == stamp
    full = world.call("eth_getBlockByNumber", ["0x1", True])["result"]
    assert {t["blockTimestamp"] for t in full["transactions"]} == {stamp}
    logs = world.call("eth_getLogs", [{"blockHash": world.block1["hash"]}])["result"]
    assert logs and {entry["blockTimestamp"] for entry in logs} == {stamp}
    receipt = world.call("eth_getTransactionReceipt", [world.txs[2]])["result"]
    assert receipt["logs"] and receipt["logs"][0]["blockTimestamp"] == stamp
    pending = world.call("eth_getTransactionByHash", [world.pending])["result"]
    assert pending["blockHash"] is None and pending["blockTimestamp"] is None


def test_a_plain_block_hash_names_the_same_block_as_the_object_form(world: World) -> None:
    h = world.block1["hash"]
    for method, head in (("eth_getBalance", [ADDRESSES[0]]),
                         ("eth_getTransactionCount", [ADDRESSES[0]]),
                         ("eth_getCode", [STORE]), ("eth_getStorageAt", [STORE, "0x0"]),
                         ("eth_call", [{"to": STORE, "input": _call_data(b"spec")}]),
                         ("eth_getBlockReceipts", [])):
        plain = world.call(method, [*head, h])
        assert "result" in plain, f"{method} refused a plain block hash: {plain}"
        assert plain == world.call(method, [*head, {"blockHash": h}]), method
    unknown = world.call("eth_getBalance", [ADDRESSES[0], ZERO_HASH])
    assert unknown["error"]["code"] != -32602, unknown  # a valid param, an unknown block


def test_fee_history_without_percentiles_leaves_reward_out(world: World) -> None:
    out = world.call("eth_feeHistory", ["0x2", "latest", []])["result"]
    assert "reward" not in out
    with_percentiles = world.call("eth_feeHistory", ["0x2", "latest", [10, 90]])["result"]
    assert with_percentiles["reward"] == [["0x0", "0x0"], ["0x0", "0x0"]]


@given(st.binary(min_size=32, max_size=32))
def test_block_parameter_hash_round_trip(raw: bytes) -> None:
    assert P.block_tag("0x" + raw.hex(), "params[1]") == P.BlockRef(hash=raw)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_block_parameter_numbers_are_not_hashes(n: int) -> None:
    assert P.block_tag(hex(n), "params[1]") == n
