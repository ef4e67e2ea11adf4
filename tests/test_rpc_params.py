"""Property tests for yilian.api.rpc_params and yilian.api.rpc_errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.api import rpc_log_params as L
from yilian.api import rpc_params as P
from yilian.api.rpc_errors import (
    ExecutionReverted,
    InternalError,
    InvalidParams,
    InvalidRequest,
    LimitExceeded,
    MethodNotFound,
    ParseError,
    ResourceNotFound,
    RpcError,
    ServerError,
)
from yilian.api.rpc_format import hexq

# ---------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------

_hexish = st.one_of(
    st.from_regex(r"0x[0-9a-fA-F]{0,70}", fullmatch=True),
    st.from_regex(r"0x[0-9a-f]{40}", fullmatch=True),
    st.from_regex(r"0x[0-9a-fA-F]{40}", fullmatch=True),
    st.from_regex(r"0x[0-9a-f]{64}", fullmatch=True),
    st.from_regex(r"0[xX][0-9a-fA-F_ \n+-]{0,8}", fullmatch=True),
    st.sampled_from([*sorted(P.BLOCK_TAGS), "0x", "0x0", "0x00", "Latest", "", "0X1"]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    _hexish,
)
# The keys of a call object (accessList apart), spelled out here, not taken from the parser.
CALL_KEYS = [
    "from",
    "to",
    "gas",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "value",
    "data",
    "input",
    "nonce",
    "chainId",
    "type",
]
_keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        [
            *CALL_KEYS,
            "accessList",
            "address",
            "storageKeys",
            "fromBlock",
            "toBlock",
            "blockHash",
            "blockNumber",
            "requireCanonical",
            "topics",
            "authorizationList",
        ]
    ),
)
JSON = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(_keys, children, max_size=6),
    max_leaves=25,
)

PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "quantity": P.quantity,
    "data": P.data,
    "data20": lambda v, w: P.data(v, w, 20),
    "address": P.address,
    "hash32": P.hash32,
    "boolean": P.boolean,
    "block_tag": P.block_tag,
    "block_number_or_tag": P.block_number_or_tag,
    "call_object": P.call_object,
    "log_filter": L.log_filter,
    "params_list": lambda v, w: P.params_list(v, 0, 3, "eth_test"),
}

SETTINGS = settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def _only_invalid_params(parser: Callable[[Any, str], Any], value: Any) -> None:
    """Run ``parser``; anything other than success or InvalidParams fails the test."""
    try:
        parser(value, "params[0]")
    except InvalidParams as exc:
        assert exc.code == -32602
        assert exc.message.startswith("invalid params: ")
        json.dumps(exc.to_json())


# ---------------------------------------------------------------------------
# never raise anything but InvalidParams
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PARSERS))
@SETTINGS
@given(value=JSON)
def test_parsers_only_raise_invalid_params(name: str, value: Any) -> None:
    """Arbitrary JSON never makes a parser raise anything but InvalidParams."""
    _only_invalid_params(PARSERS[name], value)


_call_objects = st.dictionaries(
    st.sampled_from(CALL_KEYS),
    st.one_of(_hexish, st.none(), st.integers(0, 10)),
    max_size=8,
) | st.fixed_dictionaries(
    {
        "accessList": st.lists(
            st.dictionaries(
                st.sampled_from(["address", "storageKeys", "x"]),
                st.one_of(_hexish, st.lists(_hexish, max_size=3), st.none()),
            ),
            max_size=3,
        )
    }
)
_filters = st.dictionaries(
    st.sampled_from(["fromBlock", "toBlock", "blockHash", "address", "topics"]),
    st.one_of(
        _hexish,
        st.none(),
        st.lists(
            st.one_of(_hexish, st.none(), st.lists(st.one_of(_hexish, st.none()))), max_size=6
        ),
    ),
    max_size=5,
)
_block_objects = st.dictionaries(
    st.sampled_from(["blockNumber", "blockHash", "requireCanonical"]),
    st.one_of(_hexish, st.booleans(), st.none()),
    max_size=3,
)


@SETTINGS
@given(value=_call_objects)
def test_call_object_structured_fuzz(value: dict[str, Any]) -> None:
    """Near-valid call objects also only ever raise InvalidParams."""
    _only_invalid_params(P.call_object, value)


@SETTINGS
@given(value=_filters)
def test_log_filter_structured_fuzz(value: dict[str, Any]) -> None:
    """Near-valid filters only ever raise InvalidParams, and results hold invariants."""
    try:
        flt = L.log_filter(value, "params[0]")
    except InvalidParams:
        return
    assert len(flt.topics) <= L.MAX_TOPICS
    assert (flt.block_hash is None) == (flt.from_block is not None and flt.to_block is not None)
    for pos in flt.topics:
        assert pos is None or (pos and all(len(t) == 32 for t in pos))
    assert all(len(a) == 20 for a in flt.addresses)
    assert len(set(flt.addresses)) == len(flt.addresses)


@SETTINGS
@given(value=_block_objects)
def test_block_tag_objects_fuzz(value: dict[str, Any]) -> None:
    """EIP-1898 objects parse to str/int/BlockRef or raise InvalidParams."""
    try:
        ref = P.block_tag(value, "params[1]")
    except InvalidParams:
        return
    if isinstance(ref, P.BlockRef):
        assert (ref.number is None) != (ref.hash is None)
    else:
        assert ref in P.BLOCK_TAGS if isinstance(ref, str) else isinstance(ref, int)


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------


@given(n=st.integers(min_value=0, max_value=P.UINT256_MAX))
def test_quantity_round_trip(n: int) -> None:
    """quantity(hexq(n)) == n, also with upper-case digits."""
    assert P.quantity(hexq(n), "x") == n
    assert P.quantity("0x" + hexq(n)[2:].upper(), "x") == n


@given(n=st.integers(min_value=P.UINT256_MAX + 1, max_value=2**300))
def test_quantity_rejects_above_uint256(n: int) -> None:
    """Values over 256 bits are rejected."""
    with pytest.raises(InvalidParams):
        P.quantity(hexq(n), "x")


@given(n=st.integers(min_value=0, max_value=2**70), zeros=st.integers(1, 3))
def test_quantity_rejects_leading_zeros(n: int, zeros: int) -> None:
    """A leading zero digit is never allowed (except the lone "0x0")."""
    with pytest.raises(InvalidParams, match="leading zeros"):
        P.quantity("0x" + "0" * zeros + hexq(n)[2:], "params[0]")


@given(n=st.integers(min_value=0, max_value=2**64))
def test_quantity_max_value(n: int) -> None:
    """max_value bounds the result inclusively."""
    if n <= P.UINT64_MAX:
        assert P.quantity(hexq(n), "x", max_value=P.UINT64_MAX) == n
    else:
        with pytest.raises(InvalidParams):
            P.quantity(hexq(n), "x", max_value=P.UINT64_MAX)


@given(b=st.binary(max_size=200))
def test_data_round_trip(b: bytes) -> None:
    """data("0x" + hex) == bytes, in either case; exact length is enforced."""
    assert P.data("0x" + b.hex(), "x") == b
    assert P.data("0x" + b.hex().upper(), "x") == b
    assert P.data("0x" + b.hex(), "x", len(b)) == b
    with pytest.raises(InvalidParams, match=f"exactly {len(b) + 1} bytes"):
        P.data("0x" + b.hex(), "x", len(b) + 1)


@given(b=st.binary(min_size=1, max_size=40))
def test_data_rejects_odd_and_unprefixed(b: bytes) -> None:
    """Odd digit counts, a missing prefix and whitespace are rejected."""
    for bad in ("0x" + b.hex()[1:], b.hex(), "0x " + b.hex(), "0x" + b.hex() + "\n"):
        with pytest.raises(InvalidParams):
            P.data(bad, "x")


@given(raw=st.binary(min_size=20, max_size=20))
def test_address_accepts_lower_upper_and_checksum(raw: bytes) -> None:
    """Lowercase, uppercase and correctly checksummed addresses parse to the bytes."""
    lower = "0x" + raw.hex()
    assert P.address(lower, "x") == raw
    assert P.address("0x" + raw.hex().upper(), "x") == raw
    assert P.address(to_checksum_address(raw), "x") == raw


@given(raw=st.binary(min_size=20, max_size=20), data=st.data())
def test_address_rejects_bad_checksum(raw: bytes, data: st.DataObject) -> None:
    """Flipping the case of one letter of a checksummed address breaks it."""
    good = to_checksum_address(raw)
    letters = [i for i, c in enumerate(good) if i >= 2 and c.isalpha()]
    if not letters:
        return
    i = data.draw(st.sampled_from(letters))
    bad = good[:i] + good[i].swapcase() + good[i + 1 :]
    body = bad[2:]
    if body in (body.lower(), body.upper()):
        assert P.address(bad, "x") == raw  # became a plain non-checksummed form
        return
    with pytest.raises(InvalidParams, match="EIP-55 checksum") as exc:
        P.address(bad, "params[0].to")
    assert "params[0].to" in exc.value.message
    assert good in exc.value.message


def test_address_known_checksum_vector() -> None:
    """EIP-55 test vector: valid passes, one flipped letter fails."""
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert P.address(good, "x") == bytes.fromhex(good[2:])
    with pytest.raises(InvalidParams, match="checksum"):
        P.address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "x")


# ---------------------------------------------------------------------------
# messages and specific behaviours
# ---------------------------------------------------------------------------


def test_quantity_error_message_is_actionable() -> None:
    """The message names the parameter, the expectation and the received value."""
    with pytest.raises(InvalidParams) as exc:
        P.quantity("0x01", "params[0]")
    msg = exc.value.message
    assert msg.startswith(
        "invalid params: params[0] must be a 0x-prefixed hex quantity without leading "
        "zeros, got '0x01'"
    )
    assert "'0x1'" in msg
    with pytest.raises(InvalidParams, match=r"e\.g\. '0x10'"):
        P.quantity(16, "params[0]")
    for bad in ("0x", "0x_1", "0x 1", "0X1", "1", "-0x1", True, None, 1.0):
        with pytest.raises(InvalidParams):
            P.quantity(bad, "params[0]")
    assert P.quantity("0x0", "x") == 0


def test_boolean_is_strict() -> None:
    """Only JSON booleans are booleans."""
    assert P.boolean(True, "x") is True
    assert P.boolean(False, "x") is False
    not_bools: list[Any] = [0, 1, "true", None, []]
    for bad in not_bools:
        with pytest.raises(InvalidParams, match="JSON boolean"):
            P.boolean(bad, "params[1]")


def test_block_tag_forms() -> None:
    """Tags, quantities and both EIP-1898 object forms."""
    h = "0x" + "ab" * 32
    for tag in P.BLOCK_TAGS:
        assert P.block_tag(tag, "x") == tag
    assert P.block_tag("0x10", "x") == 16
    assert P.block_tag({"blockNumber": "0x10"}, "x") == P.BlockRef(number=16)
    assert P.block_tag({"blockNumber": "safe"}, "x") == "safe"
    assert P.block_tag({"blockHash": h}, "x") == P.BlockRef(hash=bytes.fromhex("ab" * 32))
    ref = P.block_tag({"blockHash": h, "requireCanonical": True}, "x")
    assert isinstance(ref, P.BlockRef) and ref.require_canonical
    bad_values: list[Any] = [
        {},
        {"blockNumber": "0x1", "blockHash": h},
        {"blockNumber": "0x1", "requireCanonical": True},
        {"blockHash": h, "requireCanonical": "yes"},
        {"blockHash": h, "extra": 1},
        "Latest",
        16,
        None,
    ]
    for bad in bad_values:
        with pytest.raises(InvalidParams):
            P.block_tag(bad, "params[1]")
    with pytest.raises(InvalidParams):
        P.block_number_or_tag({"blockNumber": "0x1"}, "params[0]")
    with pytest.raises(ValueError):
        P.BlockRef()


def test_call_object_parses_everything() -> None:
    """A full call object maps onto CallArgs; data/input and fee rules apply."""
    sender = "0x" + "11" * 20
    target = to_checksum_address("0x" + "22" * 20)
    key = "0x" + "00" * 31 + "07"
    args = P.call_object(
        {
            "from": sender,
            "to": target,
            "gas": "0x5208",
            "maxFeePerGas": "0xa",
            "maxPriorityFeePerGas": "0x1",
            "value": "0x0",
            "input": "0xdeadbeef",
            "data": "0xdeadbeef",
            "nonce": "0x3",
            "accessList": [{"address": target, "storageKeys": [key]}],
            "chainId": "0x539",
            "type": "0x2",
        },
        "params[0]",
    )
    assert args.from_ == b"\x11" * 20 and args.to == b"\x22" * 20
    assert (args.gas, args.max_fee_per_gas, args.max_priority_fee_per_gas) == (21000, 10, 1)
    assert args.gas_price is None and args.value == 0 and args.nonce == 3
    assert args.data == bytes.fromhex("deadbeef") and args.chain_id == 1337
    assert args.access_list == ((b"\x22" * 20, (bytes.fromhex(key[2:]),)),)
    assert args.evm_access_list() == ((b"\x22" * 20, (7,)),)

    empty = P.call_object({"to": None, "authorizationList": None}, "params[0]")
    assert empty == P.CallArgs()

    cases: list[tuple[dict[str, Any], str]] = [
        ({"data": "0x01", "input": "0x02"}, 'use "input"'),
        ({"gasPrice": "0x1", "maxFeePerGas": "0x1"}, "both gasPrice"),
        ({"maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x2"}, "must not exceed"),
        ({"gas": "0x10000000000000000"}, r"params\[0\]\.gas"),
        ({"gass": "0x1"}, "unknown key 'gass'"),
        ({"blobVersionedHashes": []}, "blob transactions"),
        ({"accessList": [{"address": sender}]}, "storageKeys"),
        ({"accessList": [{"storageKeys": []}]}, "address"),
        ({"accessList": {"address": sender}}, "access list"),
        ({"type": "0x3"}, "type"),
        ({"value": 5}, "hex strings"),
    ]
    for bad, pattern in cases:
        with pytest.raises(InvalidParams, match=pattern):
            P.call_object(bad, "params[0]")
    with pytest.raises(InvalidParams, match="transaction call object"):
        P.call_object([], "params[0]")


def test_log_filter_forms() -> None:
    """Defaults, single/list addresses, topic normalisation and exclusivity."""
    a1, a2 = "0x" + "01" * 20, "0x" + "02" * 20
    t1, t2 = "0x" + "aa" * 32, "0x" + "bb" * 32
    flt = L.log_filter({}, "params[0]")
    assert flt == L.LogFilter(from_block="latest", to_block="latest")
    flt = L.log_filter(
        {
            "fromBlock": "0x1",
            "toBlock": "latest",
            "address": [a1, a2, a1],
            "topics": [t1, None, [t1, t2, t1], []],
        },
        "params[0]",
    )
    assert flt.from_block == 1 and flt.to_block == "latest"
    assert flt.addresses == (b"\x01" * 20, b"\x02" * 20)
    tb1, tb2 = bytes.fromhex("aa" * 32), bytes.fromhex("bb" * 32)
    assert flt.topics == ((tb1,), None, (tb1, tb2), None)
    assert flt.address_set == frozenset({b"\x01" * 20, b"\x02" * 20})
    assert L.log_filter({"topics": [[None, t2]]}, "x").topics == (None,)
    flt = L.log_filter({"blockHash": t1, "address": a1}, "params[0]")
    assert flt.block_hash == tb1 and flt.from_block is None and flt.to_block is None

    cases: list[tuple[dict[str, Any], str]] = [
        ({"blockHash": t1, "fromBlock": "0x1"}, "cannot be combined"),
        ({"fromBlock": "0x5", "toBlock": "0x4"}, "invalid block range"),
        ({"topics": [None] * 5}, "at most 4"),
        ({"topics": t1}, "array of up to 4"),
        ({"topics": [5]}, r"topics\[0\]"),
        ({"address": 5}, "address"),
        ({"fromBlock": {"blockNumber": "0x1"}}, "fromBlock"),
        ({"limit": 5}, "unknown key 'limit'"),
    ]
    for bad, pattern in cases:
        with pytest.raises(InvalidParams, match=pattern):
            L.log_filter(bad, "params[0]")


def test_params_list_arity() -> None:
    """Missing params count as []; results are padded; arity errors name the method."""
    assert P.params_list(None, 0, 0, "eth_blockNumber") == []
    assert P.params_list(["0x1"], 1, 2, "eth_getBalance") == ["0x1", None]
    src = ["a", "b"]
    out = P.params_list(src, 2, 2, "m")
    assert out == src and out is not src
    with pytest.raises(InvalidParams, match="eth_getBalance expects 1 to 2 params, got 3"):
        P.params_list([1, 2, 3], 1, 2, "eth_getBalance")
    with pytest.raises(InvalidParams, match="eth_getCode expects exactly 2 params, got 0"):
        P.params_list([], 2, 2, "eth_getCode")
    with pytest.raises(InvalidParams, match="JSON array"):
        P.params_list({"a": 1}, 0, 1, "eth_x")


@given(params=st.lists(JSON, max_size=5), lo=st.integers(0, 4), extra=st.integers(0, 2))
def test_params_list_property(params: list[Any], lo: int, extra: int) -> None:
    """Either InvalidParams, or a list of exactly max_len items with params as prefix."""
    hi = lo + extra
    try:
        out = P.params_list(params, lo, hi, "m")
    except InvalidParams:
        assert not lo <= len(params) <= hi
        return
    assert len(out) == hi and out[: len(params)] == params
    assert all(x is None for x in out[len(params) :])


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_error_codes_and_json() -> None:
    """Each class carries geth's code; to_json omits data when None."""
    expected: list[tuple[RpcError, int]] = [
        (ParseError("unexpected end of JSON input"), -32700),
        (InvalidRequest("missing 'method'"), -32600),
        (MethodNotFound("eth_foo"), -32601),
        (InvalidParams("params[0] ..."), -32602),
        (InternalError("boom"), -32603),
        (ServerError("transaction rejected: nonce too low"), -32000),
        (ExecutionReverted(b""), 3),
        (ResourceNotFound("block not found"), -32001),
        (LimitExceeded("query returned more than 10000 results"), -32005),
    ]
    for err, code in expected:
        assert err.code == code
        out = err.to_json()
        assert out["code"] == code and out["message"] == str(err)
        json.dumps(out)
    assert "data" not in ServerError("x").to_json()
    assert ServerError("x", {"k": 1}).to_json()["data"] == {"k": 1}
    assert MethodNotFound("eth_foo").message.startswith("the method eth_foo does not exist")
    assert InvalidParams("invalid params: x").message == "invalid params: x"


def test_execution_reverted_like_geth() -> None:
    """Error(string) and Panic(uint256) are decoded; data is the raw 0x payload."""
    payload = bytes.fromhex("08c379a0") + abi_encode(["string"], ["not allowed"])
    err = ExecutionReverted(payload)
    assert err.to_json() == {
        "code": 3,
        "message": "execution reverted: not allowed",
        "data": "0x" + payload.hex(),
    }
    panic = bytes.fromhex("4e487b71") + (0x12).to_bytes(32, "big")
    assert ExecutionReverted(panic).message == ("execution reverted: division or modulo by zero")
    assert ExecutionReverted(b"\x01\x02").message == "execution reverted"
    assert ExecutionReverted(b"").to_json()["data"] == "0x"
    assert ExecutionReverted(b"", reason="custom").message == "execution reverted: custom"


@given(payload=st.binary(max_size=200))
def test_execution_reverted_never_raises(payload: bytes) -> None:
    """Arbitrary revert payloads (incl. truncated Error selectors) never crash."""
    for p in (payload, bytes.fromhex("08c379a0") + payload, bytes.fromhex("4e487b71") + payload):
        err = ExecutionReverted(p)
        assert err.message.startswith("execution reverted")
        assert err.data == "0x" + p.hex()
