"""Bad input never crashes the node and never corrupts state; each gets the right JSON-RPC error.

Runs the real FastAPI app in process (TestClient) over a node whose block producer is not
started: blocks are made explicitly, so "nothing was committed" is checkable exactly.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import rlp
from eth_account import Account
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from helpers import (
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.api.rpc import RpcHandler
from yilian.network_configs.local import LOCAL_CHAIN_ID, RECORD_STORE_ADDRESS
from yilian.node.service import Node

MAX_REQUEST_BYTES = 16_384
MAX_BATCH = 8
MAX_NONCE_GAP = 4
MAX_TX_BYTES = 2_048
CONFIG = {
    "rpc": {"max_request_bytes": MAX_REQUEST_BYTES, "max_batch": MAX_BATCH},
    "mempool": {"max_nonce_gap": MAX_NONCE_GAP, "max_tx_bytes": MAX_TX_BYTES},
}
# Every code a well-behaved node may answer bad input with (-32603 means a bug was hit).
KNOWN_CODES = {-32700, -32600, -32601, -32602, -32000, -32001, -32005, 3}
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
OUTSIDER_KEY = "0x" + "42" * 32
TESTS_DIR = Path(__file__).parent


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = make_node(tmp_path, config=CONFIG)
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with make_client(node, raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient, payload: Any) -> Any:
    """POST a JSON payload; the answer must be HTTP 200 with a JSON body."""
    r = client.post("/rpc", content=json.dumps(payload),
                    headers={"content-type": "application/json"})
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def call(client: TestClient, method: str, params: Any = None, req_id: Any = 1) -> Any:
    body = {"jsonrpc": "2.0", "id": req_id, "method": method}
    if params is not None:
        body["params"] = params
    return post(client, body)


def result(client: TestClient, method: str, params: Any = None) -> Any:
    resp = call(client, method, params)
    assert "error" not in resp, resp
    return resp["result"]


def check_error(resp: Any, code: int, *words: str, req_id: Any = 1) -> dict[str, Any]:
    assert isinstance(resp, dict) and "result" not in resp, resp
    assert resp["jsonrpc"] == "2.0" and resp["id"] == req_id, resp
    err = resp["error"]
    assert err["code"] == code, err
    for word in words:
        assert word.lower() in err["message"].lower(), (word, err["message"])
    return dict(err)


def snapshot(node: Node) -> tuple[int, bytes, bytes]:
    head = node.core.head()
    return head.block_number, bytes(head.hash), bytes(head.state_root)


def check_well_formed(obj: Any) -> None:
    """One JSON-RPC 2.0 response object: result xor error, error code among KNOWN_CODES."""
    assert isinstance(obj, dict), obj
    assert obj.get("jsonrpc") == "2.0", obj
    assert "id" in obj, obj
    assert set(obj) <= {"jsonrpc", "id", "result", "error"}, obj
    assert ("result" in obj) != ("error" in obj), obj
    if "error" in obj:
        err = obj["error"]
        assert isinstance(err, dict) and set(err) <= {"code", "message", "data"}, err
        assert isinstance(err["code"], int) and err["code"] in KNOWN_CODES, err
        assert isinstance(err["message"], str) and err["message"], err


# -- framing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"{", b"not json", b"\xff\xfe\xfd", b"", b"   ", b"[1,]", b"{'jsonrpc': '2.0'}",
    b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"',
    b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}}',
    b'{"jsonrpc": "2.0", "id": ' + b"9" * 5000 + b', "method": "eth_chainId"}',
])
def test_malformed_json_is_a_parse_error(client: TestClient, body: bytes) -> None:
    r = client.post("/rpc", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200
    check_error(r.json(), -32700, "parse error", req_id=None)


@pytest.mark.parametrize("payload", [
    1, "eth_chainId", None, True, [],
    {"id": 1, "method": "eth_chainId"},  # no jsonrpc
    {"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"},
    {"jsonrpc": 2.0, "id": 1, "method": "eth_chainId"},
    {"jsonrpc": "2.0", "id": 1},  # no method
    {"jsonrpc": "2.0", "id": 1, "method": 5},
    {"jsonrpc": "2.0", "id": 1, "method": ["eth_chainId"]},
    {"jsonrpc": "2.0", "id": {"a": 1}, "method": "eth_chainId"},
    {"jsonrpc": "2.0", "id": [1], "method": "eth_chainId"},
    {"jsonrpc": "2.0", "id": True, "method": "eth_chainId"},
])
def test_invalid_request_objects(client: TestClient, payload: Any) -> None:
    resp = post(client, payload)
    expected_id = payload.get("id") if isinstance(payload, dict) and isinstance(
        payload.get("id"), int) and not isinstance(payload.get("id"), bool) else None
    check_error(resp, -32600, "invalid request", req_id=expected_id)


def test_non_objects_in_a_batch_each_get_invalid_request(client: TestClient) -> None:
    resp = post(client, [1, "x", None])
    assert isinstance(resp, list) and len(resp) == 3
    for item in resp:
        check_error(item, -32600, req_id=None)


@pytest.mark.parametrize("method", ["eth_foo", "", "ETH_CHAINID", "eth_chainid ", "x" * 5000,
                                    "debug_traceTransaction", "admin_addPeer", "eth_subscribe",
                                    "eth_sendTransaction", "personal_sign"])
def test_unknown_methods(client: TestClient, method: str) -> None:
    err = check_error(call(client, method, []), -32601, "does not exist")
    assert len(err["message"]) < 400  # long names are not echoed in full


def test_subscribe_over_http_points_to_websocket(client: TestClient) -> None:
    err = check_error(call(client, "eth_subscribe", ["newHeads"]), -32601)
    assert "websocket" in (err["message"] + json.dumps(err.get("data"))).lower(), err


ADDR = ADDRESSES[0]
BAD_CHECKSUM = ADDR[:2] + ADDR[2:].swapcase()
assert BAD_CHECKSUM != ADDR and BAD_CHECKSUM.lower() != BAD_CHECKSUM
HASH = "0x" + "ab" * 32


@pytest.mark.parametrize(("method", "params", "word"), [
    ("eth_getBalance", [123], "params[0]"),
    ("eth_getBalance", [123, "latest"], "params[0]"),
    ("eth_getBalance", [BAD_CHECKSUM, "latest"], "checksum"),
    ("eth_getBalance", [ADDR[:-2], "latest"], "20 bytes"),
    ("eth_getBalance", [ADDR, "foo"], "params[1]"),
    ("eth_getBalance", [ADDR, 1], "params[1]"),
    ("eth_getBalance", [ADDR, "0x01"], "leading zeros"),
    ("eth_getBalance", [ADDR, {"blockNumber": "0x0", "blockHash": HASH}], "exactly one"),
    ("eth_getBalance", [], "missing"),
    ("eth_getBalance", [ADDR, "latest", "extra"], "too many"),
    ("eth_getBalance", {"address": ADDR}, "array"),
    ("eth_getBalance", "0x1", "array"),
    ("eth_getTransactionCount", [ADDR, True], "params[1]"),
    ("eth_getCode", [None], "params[0]"),
    ("eth_getStorageAt", [ADDR, "latest"], "params[1]"),
    ("eth_getStorageAt", [ADDR, 0, "latest"], "params[1]"),
    ("eth_getProof", [ADDR, "0x0", "latest"], "storage keys"),
    ("eth_getBlockByNumber", ["latest"], "missing"),
    ("eth_getBlockByNumber", ["latest", "true"], "boolean"),
    ("eth_getBlockByNumber", ["latest", 1], "boolean"),
    ("eth_getBlockByNumber", ["foo", False], "params[0]"),
    ("eth_getBlockByNumber", [1, False], "params[0]"),
    ("eth_getBlockByHash", ["0x12", False], "32 bytes"),
    ("eth_getBlockByHash", [HASH, None], "boolean"),
    ("eth_getTransactionByHash", [123], "params[0]"),
    ("eth_getTransactionReceipt", ["0x" + "ab" * 31], "32 bytes"),
    ("eth_getTransactionByBlockNumberAndIndex", ["latest", 1], "params[1]"),
    ("eth_getBlockTransactionCountByHash", ["latest"], "params[0]"),
    ("eth_call", ["0x1234", "latest"], "call object"),
    ("eth_call", [[], "latest"], "call object"),
    ("eth_call", [{"to": ADDR, "gas": 100000}, "latest"], "params[0].gas"),
    ("eth_call", [{"to": ADDR, "bogus": 1}, "latest"], "unknown key"),
    ("eth_call", [{"to": ADDR, "data": "0x1"}, "latest"], "odd"),
    ("eth_call", [{"to": ADDR}, "nope"], "params[1]"),
    ("eth_estimateGas", ["x"], "call object"),
    ("eth_sendRawTransaction", [123], "params[0]"),
    ("eth_sendRawTransaction", ["hello"], "0x"),
    ("eth_sendRawTransaction", ["0xzz"], "params[0]"),
    ("eth_sendRawTransaction", ["0xabc"], "odd"),
    ("eth_sendRawTransaction", [], "missing"),
    ("eth_sendRawTransaction", [None], "params[0]"),
    ("eth_getLogs", [{"fromBlock": 1}], "fromBlock"),
    ("eth_getLogs", [{"fromBlock": "0x2", "toBlock": "0x1"}], "range"),
    ("eth_getLogs", [{"topics": "0x1"}], "topics"),
    ("eth_getLogs", ["latest"], "filter object"),
    ("eth_newFilter", [{"address": 5}], "address"),
    ("eth_uninstallFilter", [], "missing"),
    ("eth_feeHistory", ["latest", "latest"], "params[0]"),
    ("eth_feeHistory", [[], "latest"], "params[0]"),
    ("eth_feeHistory", [{"n": 1}, "latest"], "params[0]"),
    ("eth_feeHistory", [-1, "latest"], "params[0]"),
    ("web3_sha3", [1], "params[0]"),
    ("web3_sha3", ["hello"], "0x"),
    ("eth_chainId", [1], "too many"),
    ("eth_blockNumber", ["latest"], "too many"),
])
def test_wrong_param_types(client: TestClient, node: Node, method: str, params: Any,
                           word: str) -> None:
    before = snapshot(node)
    err = check_error(call(client, method, params), -32602, "invalid params")
    assert word.lower() in err["message"].lower(), err["message"]
    assert snapshot(node) == before and len(node.mempool) == 0


# -- limits ------------------------------------------------------------------------------------


def test_oversized_body_is_refused_with_413(client: TestClient, node: Node) -> None:
    big = json.dumps(rpc_body("web3_sha3", ["0x" + "00" * MAX_REQUEST_BYTES])).encode()
    r = client.post("/rpc", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    check_error(r.json(), -32005, "exceeds the limit", str(MAX_REQUEST_BYTES), req_id=None)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    r = client.post("/rpc", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    check_error(r.json(), -32005, req_id=None)
    # a request just under the limit is served
    fits = rpc_body("web3_sha3", ["0x"])
    pad = MAX_REQUEST_BYTES - len(json.dumps(fits)) - 20
    fits["pad"] = "x" * pad
    body = json.dumps(fits).encode()
    assert len(body) <= MAX_REQUEST_BYTES
    r = client.post("/rpc", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and "result" in r.json()
    assert result(client, "eth_blockNumber") == "0x0"


def test_wrong_content_type(client: TestClient) -> None:
    r = client.post("/rpc", content=json.dumps(rpc_body("eth_chainId")),
                    headers={"content-type": "text/plain"})
    assert r.status_code == 415
    check_error(r.json(), -32600, "content-type", req_id=None)


def test_batch_limits(client: TestClient) -> None:
    check_error(post(client, []), -32600, "empty batch", req_id=None)
    too_many = [rpc_body("eth_chainId", req_id=i) for i in range(MAX_BATCH + 1)]
    check_error(post(client, too_many), -32005, "batch", str(MAX_BATCH), req_id=None)
    at_limit = [rpc_body("eth_chainId", req_id=i) for i in range(MAX_BATCH)]
    assert [r["id"] for r in post(client, at_limit)] == list(range(MAX_BATCH))


_DEEP_HTTP = """
for depth in (1_000, 10_000, 100_000):
    for body in (b"[" * depth + b"]" * depth,
                 b'{"jsonrpc":"2.0","id":1,"method":"eth_call","params":'
                 + b"[" * depth + b"]" * depth + b"}"):
        r = client.post("/rpc", content=body, headers={"content-type": "application/json"})
        print(depth, r.status_code, r.text[:120], flush=True)
        assert r.status_code == 200, r.status_code
        json.loads(r.text)
r = client.post("/rpc", json={"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"})
assert r.json()["result"] == hex(CHAIN_ID), r.text
"""
_DEEP_WS = """
with client.websocket_connect("/ws") as ws:
    for depth in (1_000, 10_000, 100_000):
        ws.send_text("[" * depth + "]" * depth)
        answer = ws.receive_text()
        print(depth, answer[:120], flush=True)
        json.loads(answer)
    ws.send_text(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"}))
    assert json.loads(ws.receive_text())["result"] == hex(CHAIN_ID)
"""


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_deeply_nested_json_does_not_kill_the_node(tmp_path: Path, transport: str) -> None:
    """py-evm raises the recursion limit to 100000, so json.loads of a ~200 KB body of nested
    brackets (well under the default 5 MB request limit) can overflow the C stack. Run it in
    a child process: a crash there must not take the test run down."""
    script = "\n".join([
        "import json, sys",
        "from pathlib import Path",
        f"sys.path.insert(0, {str(TESTS_DIR)!r})",
        "from helpers import make_client, make_node",
        f"CHAIN_ID = {LOCAL_CHAIN_ID}",
        f"node = make_node(Path({str(tmp_path)!r}))",
        "client = make_client(node, raise_server_exceptions=False)",
        _DEEP_HTTP if transport == "http" else _DEEP_WS,
        "node.stop()",
        "print('alive', flush=True)",
    ])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "alive" in proc.stdout, (
        f"node process died or misbehaved (exit code {proc.returncode}); stdout:\n"
        f"{proc.stdout}\nstderr tail:\n{proc.stderr[-1500:]}")


# -- batches and notifications -----------------------------------------------------------------


def test_batch_mixing_good_and_bad_answers_each_in_order(client: TestClient) -> None:
    batch = [
        rpc_body("eth_chainId", req_id=1),
        rpc_body("eth_nope", req_id="two"),
        {"jsonrpc": "2.0", "method": "eth_chainId"},  # notification: no answer
        rpc_body("eth_getBalance", [123], req_id=3),
        42,
        rpc_body("eth_blockNumber", req_id=None),  # id null is still a request
        {"jsonrpc": "2.0", "method": "eth_nope", "params": []},  # failing notification
        rpc_body("eth_getBalance", [ADDR.lower(), "latest"], req_id=4.5),
    ]
    resp = post(client, batch)
    assert isinstance(resp, list)
    for item in resp:
        check_well_formed(item)
    assert [r["id"] for r in resp] == [1, "two", 3, None, None, 4.5]
    assert resp[0]["result"] == hex(LOCAL_CHAIN_ID)
    assert resp[1]["error"]["code"] == -32601
    assert resp[2]["error"]["code"] == -32602
    assert resp[3]["error"]["code"] == -32600
    assert resp[4]["result"] == "0x0"
    assert int(resp[5]["result"], 16) > 0


def test_notifications_get_no_response(client: TestClient) -> None:
    for payload in ({"jsonrpc": "2.0", "method": "eth_chainId"},
                    {"jsonrpc": "2.0", "method": "eth_nope"},
                    {"jsonrpc": "2.0", "method": "eth_getBalance", "params": [1]},
                    [{"jsonrpc": "2.0", "method": "eth_chainId"},
                     {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},
                     {"jsonrpc": "2.0", "method": "eth_nope"}]):
        r = client.post("/rpc", content=json.dumps(payload),
                        headers={"content-type": "application/json"})
        assert r.status_code == 204, (payload, r.status_code, r.text)
        assert r.content == b""


def test_internal_errors_are_contained(node: Node) -> None:
    """A handler bug becomes -32603 for a request and no response for a notification."""
    app_client = make_client(node, raise_server_exceptions=False)
    handler = app_client.app.state.rpc  # type: ignore[attr-defined]

    def boom(params: list[Any]) -> Any:
        raise RuntimeError("simulated bug")

    handler._methods["eth_chainId"] = boom
    with app_client:
        check_error(call(app_client, "eth_chainId", []), -32603, "internal error")
        r = app_client.post("/rpc", content=json.dumps({"jsonrpc": "2.0",
                                                        "method": "eth_chainId"}),
                            headers={"content-type": "application/json"})
        assert r.status_code == 204, f"a notification got a response: {r.text}"
        assert result(app_client, "eth_blockNumber") == "0x0"


# -- eth_sendRawTransaction --------------------------------------------------------------------


def _send(client: TestClient, raw: bytes | str) -> Any:
    text = raw if isinstance(raw, str) else "0x" + raw.hex()
    return call(client, "eth_sendRawTransaction", [text])


def _resign_fields(raw: bytes, r: bytes | None = None, s: bytes | None = None,
                   v: int | None = None) -> bytes:
    """Re-encode a raw tx with some signature fields replaced (no valid signature)."""
    prefix, body = (raw[:1], raw[1:]) if raw[0] < 0xC0 else (b"", raw)
    items = list(rlp.decode(body))
    if v is not None:
        items[-3] = v
    if r is not None:
        items[-2] = r
    if s is not None:
        items[-1] = s
    return prefix + rlp.encode(items)


def test_send_raw_transaction_bad_inputs_are_refused_and_change_nothing(
        client: TestClient, node: Node) -> None:
    key = KEYS[0]
    first = sign_put(key, 0, b"first", b"1")
    tx_hash = result(client, "eth_sendRawTransaction", ["0x" + first.hex()])
    assert produce_all(node) is not None
    assert result(client, "eth_getTransactionReceipt", [tx_hash])["status"] == "0x1"
    before = snapshot(node)

    valid_next = sign_put(key, 1, b"next", b"2")
    bad: list[tuple[str, bytes | str, int, tuple[str, ...], set[str]]] = [
        ("garbage", bytes.fromhex("deadbeef"), -32000, ("valid",), {"invalid_encoding"}),
        ("empty", "0x", -32000, ("empty",), {"invalid_encoding"}),
        ("empty list", bytes.fromhex("c0"), -32000, ("valid",), {"invalid_encoding"}),
        ("typed garbage", bytes.fromhex("02c0"), -32000, ("valid",), {"invalid_encoding"}),
        ("unknown type", bytes.fromhex("7fc0"), -32000, ("valid",), {"invalid_encoding"}),
        ("truncated", valid_next[:-5], -32000, ("valid",), {"invalid_encoding"}),
        ("trailing bytes", valid_next + b"\x00", -32000, ("valid",), {"invalid_encoding"}),
        ("s = 0", _resign_fields(valid_next, s=b""), -32000, ("signature",),
         {"invalid_signature"}),
        ("r = n", _resign_fields(valid_next, r=SECP256K1_N.to_bytes(32, "big")), -32000,
         ("signature",), {"invalid_signature"}),
        ("bad y parity", _resign_fields(valid_next, v=7), -32000, (),
         {"invalid_signature", "invalid_transaction", "invalid_encoding"}),
        ("wrong chain id (type 2)", sign_put(key, 1, chain_id=1), -32000,
         ("chain id", str(LOCAL_CHAIN_ID)), {"wrong_chain"}),
        ("wrong chain id (legacy)", sign_transfer(key, 1, chain_id=LOCAL_CHAIN_ID + 1,
                                                  tx_type=0),
         -32000, ("chain id",), {"wrong_chain"}),
        ("legacy without EIP-155", sign_transfer(key, 1, chain_id=None, tx_type=0), -32000,
         ("EIP-155",), {"unprotected"}),
        ("nonce too low", sign_put(key, 0, b"again", b"x"), -32000, ("nonce too low",),
         {"nonce_too_low"}),
        ("already committed", first, -32000, ("already committed",), {"known"}),
        ("nonce too far ahead", sign_put(key, 1 + MAX_NONCE_GAP + 1), -32000,
         ("too far ahead",), {"nonce_too_high"}),
        ("huge nonce", sign_put(key, 2**64 - 2), -32000, (), {"nonce_too_high",
                                                             "invalid_transaction"}),
        ("unauthorised sender", sign_put(OUTSIDER_KEY, 0), -32000,
         ("not a registered account",), {"unauthorised"}),
        ("oversized", sign(key, {
            "type": 2, "chainId": LOCAL_CHAIN_ID, "nonce": 1, "gas": 1_000_000,
            "to": to_checksum_address(RECORD_STORE_ADDRESS), "value": 0, "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0, "data": b"\x01" * (MAX_TX_BYTES + 100)}),
         -32000, ("limit", str(MAX_TX_BYTES)), {"oversized"}),
        ("blob type", b"\x03" + rlp.encode([LOCAL_CHAIN_ID, 1, 0, 0, 100_000, b"", 0, b"",
                                           [], 0, [], 0, b"", b""]),
         -32000, ("blob",), {"unsupported_type"}),
        ("gas below intrinsic", sign_transfer(key, 1, gas=20_000), -32000, ("intrinsic",),
         {"intrinsic_gas"}),
        ("gas above block target", sign_transfer(key, 1, gas=600_000_000), -32000,
         ("exceeds",), {"gas_limit"}),
        ("insufficient funds", sign_transfer(key, 1, value=10**30), -32000,
         ("insufficient funds",), {"insufficient_funds"}),
    ]
    # flipping a byte of s gives either no valid signature or someone else's address
    flipped = bytearray(valid_next)
    flipped[-3] ^= 0xFF
    bad.append(("flipped s byte", bytes(flipped), -32000, (),
                {"invalid_signature", "unauthorised"}))
    flipped = bytearray(valid_next)
    flipped[-40] ^= 0x01
    bad.append(("flipped r bit", bytes(flipped), -32000, (),
                {"invalid_signature", "unauthorised"}))
    for name, raw, code, words, reasons in bad:
        err = check_error(_send(client, raw), code, *words)
        assert isinstance(err.get("data"), dict), (name, err)
        assert err["data"].get("reason") in reasons, (name, err)
        assert len(node.mempool) == 0, name
    assert snapshot(node) == before
    assert produce_all(node) is None  # nothing was admitted, so nothing can commit
    assert snapshot(node) == before
    assert result(client, "eth_getTransactionCount", [ADDR, "pending"]) == "0x1"

    # the node still takes and commits a valid transaction
    good_hash = result(client, "eth_sendRawTransaction", ["0x" + valid_next.hex()])
    block = produce_all(node)
    assert block is not None and block.block.number == before[0] + 1
    receipt = result(client, "eth_getTransactionReceipt", [good_hash])
    assert receipt["status"] == "0x1" and receipt["blockNumber"] == hex(before[0] + 1)
    assert snapshot(node)[1] == bytes(block.block.hash)


def test_high_s_twin_cannot_replace_a_pending_transaction(client: TestClient,
                                                          node: Node) -> None:
    """Anyone who sees a pending tx can flip its signature to high-s: the same sender, nonce
    and effect under a new hash. If the node admits it (equal fees replace), the sender's
    hash never gets a receipt."""
    raw = sign_put(KEYS[1], 0, b"mine", b"1")
    tx_hash = result(client, "eth_sendRawTransaction", ["0x" + raw.hex()])
    prefix, items = raw[:1], list(rlp.decode(raw[1:]))
    v, r, s = items[-3:]
    twin = prefix + rlp.encode([
        *items[:-3], 1 - int.from_bytes(v, "big"), r,
        (SECP256K1_N - int.from_bytes(s, "big")).to_bytes(32, "big")])
    resp = _send(client, twin)
    produce_all(node)
    receipt = result(client, "eth_getTransactionReceipt", [tx_hash])
    assert "error" in resp, (
        f"high-s twin admitted as {resp.get('result')}; the original {tx_hash} now has "
        f"receipt {receipt}")
    assert receipt is not None and receipt["status"] == "0x1"


# -- fuzzing -----------------------------------------------------------------------------------


class FuzzEnv(dict[str, Any]):
    """The shared fuzzing node and client (short repr: keeps hypothesis reports readable)."""

    def __repr__(self) -> str:
        return "<fuzz env>"


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A node with a few committed blocks (transfers, RecordStore puts with logs)."""
    node = make_node(tmp_path_factory.mktemp("fuzz"), config=CONFIG)
    try:
        hashes = []
        for i in range(3):
            hashes.append(node.submit(sign_put(KEYS[i], 0, b"k%d" % i, b"v")))
            hashes.append(node.submit(sign_transfer(KEYS[i], 1, tx_type=i)))
        produce_all(node)
        with make_client(node, raise_server_exceptions=False) as client:
            methods = client.app.state.rpc.method_names()  # type: ignore[attr-defined]
            yield FuzzEnv(node=node, client=client, methods=methods,
                          tx_hashes=["0x" + h.hex() for h in hashes],
                          block_hash="0x" + bytes(node.core.head().hash).hex())
    finally:
        node.stop()


_interesting = st.sampled_from([
    "latest", "earliest", "pending", "safe", "finalized", "0x0", "0x1", "0x2", "0x",
    "0xffffffffffffffff", "0x10000000000000000", "0x" + "f" * 64, "0x00", "foo", "",
    ADDR, ADDR.lower(), BAD_CHECKSUM, RECORD_STORE_ADDRESS, "0x" + "00" * 20, HASH,
    "0x4c66708", "0xdeadbeef", "0x02c0", "0x03c0", "0xc0",
    # well-formed signed transactions that must still be refused (none may be admitted):
    "0x" + sign_put(KEYS[5], 100).hex(),  # nonce too far ahead
    "0x" + sign_transfer(KEYS[6], 0, chain_id=1).hex(),  # other chain
    "0x" + sign_put(OUTSIDER_KEY, 0).hex(),  # unauthorised
    "0x" + sign_put(KEYS[0], 0, b"k0", b"v").hex(),  # committed in fuzz_env
])
_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), _interesting,
)
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from([
        "to", "from", "data", "input", "gas", "value", "fromBlock", "toBlock", "address",
        "topics", "blockHash", "blockNumber", "requireCanonical", "accessList", "type",
        "storageKeys", "nonce", "chainId", "maxFeePerGas", "gasPrice"])), inner, max_size=5),
    max_leaves=20,
)
_ids = st.one_of(st.none(), st.integers(-(2**63), 2**63), st.text(max_size=10),
                 st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                 st.lists(st.integers(), max_size=2))


def _request(methods: list[str]) -> st.SearchStrategy[Any]:
    method = st.one_of(st.sampled_from(methods), st.sampled_from(methods), st.text(max_size=30),
                       st.sampled_from(["eth_subscribe", "eth_unsubscribe"]), _leaf)
    return st.fixed_dictionaries(
        {"jsonrpc": st.one_of(st.just("2.0"), st.just("2.0"), st.just("2.0"), _leaf),
         "method": method},
        optional={"id": _ids, "params": st.one_of(st.lists(_json, max_size=4), _json)},
    )


def _non_finite(value: Any) -> bool:
    """True when ``value`` holds NaN or +-Infinity (json.dumps writes them as non-JSON)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def _check_answer(env: dict[str, Any], body: bytes, payload: Any = None,
                  parsed: bool = False) -> None:
    client: TestClient = env["client"]
    node: Node = env["node"]
    before = snapshot(node)
    r = client.post("/rpc", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (200, 204, 413), (r.status_code, r.text[:300])
    if parsed and _non_finite(payload):  # NaN/Infinity are not JSON: refused as a whole
        assert r.status_code == 200 and r.json()["error"]["code"] == -32700, r.text
        assert r.json()["id"] is None
        return
    if r.status_code == 204:
        assert r.content == b""
        if parsed:
            assert isinstance(payload, (dict, list)), payload
    else:
        answer = json.loads(r.text)
        if isinstance(answer, list):
            assert answer, "an empty batch response"
            assert not parsed or isinstance(payload, list)
            for item in answer:
                check_well_formed(item)
            if parsed:
                assert len(answer) <= len(payload)
        else:
            check_well_formed(answer)
            if parsed and isinstance(payload, dict) and "id" in payload:
                req_id = payload["id"]
                valid_id = (req_id is None or isinstance(req_id, (str, int, float))) and \
                    not isinstance(req_id, bool)
                if valid_id and not (isinstance(req_id, float) and math.isnan(req_id)):
                    assert answer["id"] == req_id
    assert snapshot(node) == before
    assert len(node.mempool) == 0, "junk was admitted to the mempool"


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.from_regex(r'\A[\[\]{}",:0-9a-z. ]{0,80}\Z').map(str.encode),
))
def test_fuzz_arbitrary_bytes(fuzz_env: dict[str, Any], body: bytes) -> None:
    _check_answer(fuzz_env, body)


@settings(max_examples=700, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_fuzz_arbitrary_json_requests(fuzz_env: dict[str, Any], data: st.DataObject) -> None:
    req = _request(fuzz_env["methods"])
    payload = data.draw(st.one_of(req, req, st.lists(st.one_of(req, _json), max_size=6),
                                  _json), label="payload")
    _check_answer(fuzz_env, json.dumps(payload).encode(), payload, parsed=True)


def _method_names() -> list[str]:
    """The methods the handler serves (its table only touches the node when called)."""
    stub = SimpleNamespace(config=SimpleNamespace(rpc=None), genesis=SimpleNamespace(chain_id=1))
    return RpcHandler(stub).method_names()  # type: ignore[arg-type]


@pytest.mark.parametrize("method", _method_names())
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_known_methods_with_plausible_params(fuzz_env: dict[str, Any], method: str,
                                                  data: st.DataObject) -> None:
    """Every real method, params built from values that pass many parsers."""
    plausible = st.one_of(_interesting, st.sampled_from(fuzz_env["tx_hashes"]),
                          st.just(fuzz_env["block_hash"]), st.booleans(), _leaf,
                          st.fixed_dictionaries({}, optional={
                              "to": _interesting, "from": _interesting, "data": _interesting,
                              "gas": _interesting, "value": _interesting,
                              "fromBlock": _interesting, "toBlock": _interesting,
                              "address": _interesting, "blockHash": _interesting,
                              "blockNumber": _interesting,
                              "topics": st.lists(st.one_of(st.none(), _interesting),
                                                 max_size=3)}),
                          st.lists(_interesting, max_size=3), st.integers(-5, 5))
    params = data.draw(st.lists(plausible, max_size=3), label="params")
    payload = {"jsonrpc": "2.0", "id": 9, "method": method, "params": params}
    _check_answer(fuzz_env, json.dumps(payload).encode(), payload, parsed=True)


def test_fuzz_covers_every_method(fuzz_env: dict[str, Any]) -> None:
    assert _method_names() == fuzz_env["methods"]


def test_outsider_key_is_not_a_dev_account() -> None:
    assert Account.from_key(OUTSIDER_KEY).address not in ADDRESSES
