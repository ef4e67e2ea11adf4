"""yilian.contracts.abi against the committed Members, Records and Grants artifacts.

Properties: every function's arguments roundtrip through ``encode_call``/``decode_input``;
outputs and events decode by name; malformed calldata, logs and revert data are refused
with :class:`AbiError` (or ``None`` for ``revert_reason``), never a partial result.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from eth_abi import encode
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from yilian.contracts.abi import AbiError, ContractAbi, DecodedLog, contract_abi, revert_reason
from yilian.contracts.artifacts import load

CONTRACTS = ("Members", "Records", "Grants")
_UINT = re.compile(r"^uint(\d+)$")

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)


def strategy_for(param: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of one ABI parameter, in the form eth_abi decodes them to."""
    typ = param["type"]
    if typ == "tuple":
        return st.tuples(*(strategy_for(c) for c in param["components"]))
    if typ.endswith("[]"):
        return st.lists(strategy_for({**param, "type": typ[:-2]}), max_size=3).map(tuple)
    if typ == "bytes32":
        return st.binary(min_size=32, max_size=32)
    if typ == "bool":
        return st.booleans()
    if typ == "string":
        return text
    if typ == "bytes":
        return st.binary(max_size=300)
    if typ == "address":
        return addresses
    m = _UINT.match(typ)
    if m:
        return st.integers(0, 2 ** int(m.group(1)) - 1)
    raise AssertionError(f"no strategy for ABI type {typ}")


def norm(param: dict[str, Any], value: Any) -> Any:
    """``value`` with addresses in checksum form (eth_abi 6 decodes them lower-cased)."""
    typ = param["type"]
    if typ == "address":
        return to_checksum_address(value)
    if typ == "tuple":
        if isinstance(value, dict):
            return {c["name"]: norm(c, value[c["name"]]) for c in param["components"]}
        return tuple(norm(c, v) for c, v in zip(param["components"], value, strict=True))
    if typ.endswith("[]"):  # as drawn by strategy_for: a tuple, structs as tuples
        elem = {**param, "type": typ[:-2]}
        items = [norm(elem, v) for v in value]
        return tuple(tuple(i.values()) if isinstance(i, dict) else i for i in items)
    return value


def abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][len('tuple'):]}"
    return str(param["type"])


def entries(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, e) for name in CONTRACTS for e in load(name).abi if e.get("type") == kind]


FUNCTIONS = entries("function")
EVENTS = entries("event")
FN_IDS = [f"{c}.{e['name']}" for c, e in FUNCTIONS]
EV_IDS = [f"{c}.{e['name']}" for c, e in EVENTS]
ALL_SELECTORS = {contract_abi(c).selector(e["name"]) for c, e in FUNCTIONS}


def test_the_artifacts_have_the_expected_domain_functions() -> None:
    names = {c: set(contract_abi(c).functions) for c in CONTRACTS}
    assert {"add_member", "add_account", "set_active", "get_member", "role_of",
            "member_of"} <= names["Members"]
    assert {"publish", "remove", "get_record", "get_version"} <= names["Records"]
    assert {"grant", "revoke", "check", "record_access", "get_grant"} <= names["Grants"]
    assert {"RecordPublished", "RecordRemoved"} <= set(contract_abi("Records").events)
    assert {"Granted", "Revoked", "AccessReceipt"} <= set(contract_abi("Grants").events)
    # every function of every artifact gets a strategy (no type this file does not know)
    for _, fn in FUNCTIONS:
        for p in (*fn["inputs"], *fn.get("outputs", ())):
            strategy_for(p)


def test_selectors_are_keccak_of_the_canonical_signature() -> None:
    members = contract_abi("Members")
    assert members.selector("add_member") == keccak(
        b"add_member(bytes32,uint8,string,bytes,string,address)")[:4]
    records = contract_abi("Records")
    assert records.selector("publish") == keccak(
        b"publish(bytes32,uint32,uint8,bytes32,bytes32,uint16,bytes32,bytes,bytes)")[:4]
    assert records.function_at(records.selector("publish") + b"junk") == "publish"
    assert records.function_at(b"\x00\x00\x00\x00") is None


def test_contract_abi_is_cached() -> None:
    assert contract_abi("Grants") is contract_abi("Grants")
    assert isinstance(contract_abi("Grants"), ContractAbi)


# -- calls ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("contract", "fn"), FUNCTIONS, ids=FN_IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_encode_call_decode_input_roundtrip(contract: str, fn: dict[str, Any],
                                            data: st.DataObject) -> None:
    abi = contract_abi(contract)
    args = [data.draw(strategy_for(p), label=p["name"]) for p in fn["inputs"]]
    calldata = abi.encode_call(fn["name"], *args)
    assert calldata[:4] == abi.selector(fn["name"])
    assert abi.function_at(calldata) == fn["name"]
    name, decoded = abi.decode_input(calldata)
    assert name == fn["name"]
    assert list(decoded) == [p["name"] for p in fn["inputs"]]
    assert [norm(p, decoded[p["name"]]) for p in fn["inputs"]] == args


@pytest.mark.parametrize(("contract", "fn"), [f for f in FUNCTIONS if f[1]["inputs"]],
                         ids=[i for i, f in zip(FN_IDS, FUNCTIONS, strict=True)
                              if f[1]["inputs"]])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_truncated_calldata_is_refused(contract: str, fn: dict[str, Any],
                                       data: st.DataObject) -> None:
    abi = contract_abi(contract)
    args = [data.draw(strategy_for(p)) for p in fn["inputs"]]
    calldata = abi.encode_call(fn["name"], *args)
    cut = data.draw(st.integers(0, len(calldata) - 1), label="keep")
    with pytest.raises(AbiError):
        abi.decode_input(calldata[:cut])


@pytest.mark.parametrize("contract", CONTRACTS)
@settings(max_examples=50, deadline=None)
@given(selector=st.binary(min_size=4, max_size=4), rest=st.binary(max_size=100))
def test_unknown_selectors_are_refused(contract: str, selector: bytes, rest: bytes) -> None:
    abi = contract_abi(contract)
    assume(selector not in {abi.selector(n) for n in abi.functions})
    with pytest.raises(AbiError, match=contract):
        abi.decode_input(selector + rest)


def test_selector_of_another_contract_is_refused() -> None:
    publish = contract_abi("Records").encode_call(
        "publish", b"\x01" * 32, 1, 1, b"\x02" * 32, b"\x03" * 32, 1, b"\x04" * 32, b"c", b"w")
    with pytest.raises(AbiError):
        contract_abi("Grants").decode_input(publish)
    with pytest.raises(AbiError):
        contract_abi("Members").decode_input(b"")


def test_calldata_with_bad_padding_is_refused() -> None:
    members = contract_abi("Members")
    call = bytearray(members.encode_call("set_active", b"\x01" * 32, True))
    call[4 + 32] = 0x01  # a bool word with a dirty high byte
    with pytest.raises(AbiError):
        members.decode_input(bytes(call))


def test_encode_call_refuses_bad_arguments() -> None:
    grants = contract_abi("Grants")
    with pytest.raises(AbiError, match="no function"):
        grants.encode_call("steal", 1)
    with pytest.raises(AbiError, match="takes 1 arguments"):
        grants.encode_call("revoke")
    with pytest.raises(AbiError, match="takes 1 arguments"):
        grants.encode_call("revoke", 1, 2)
    with pytest.raises(AbiError):
        grants.encode_call("revoke", -1)
    with pytest.raises(AbiError):
        grants.encode_call("revoke", 2**256)
    with pytest.raises(AbiError):
        grants.encode_call("check", 1, b"\x00" * 33, b"\x00" * 32)
    with pytest.raises(AbiError):
        contract_abi("Members").encode_call("role_of", "not an address")
    with pytest.raises(AbiError):
        contract_abi("Records").encode_call("remove", b"\x00" * 32, 2**32)


# -- outputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("contract", "fn"), [f for f in FUNCTIONS if f[1].get("outputs")],
                         ids=[i for i, f in zip(FN_IDS, FUNCTIONS, strict=True)
                              if f[1].get("outputs")])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decode_output_names_tuple_fields(contract: str, fn: dict[str, Any],
                                          data: st.DataObject) -> None:
    abi = contract_abi(contract)
    outputs = fn["outputs"]
    values = [data.draw(strategy_for(p)) for p in outputs]
    out = abi.decode_output(fn["name"], encode([abi_type(p) for p in outputs], values))

    def named(p: dict[str, Any], v: Any) -> Any:
        if p["type"] == "tuple":
            return {c["name"]: named(c, x) for c, x in zip(p["components"], v, strict=True)}
        return v

    expected = [named(p, v) for p, v in zip(outputs, values, strict=True)]
    got = [out] if len(outputs) == 1 else list(out)
    assert len(outputs) == 1 or isinstance(out, tuple)
    assert [norm(p, v) for p, v in zip(outputs, got, strict=True)] == expected


def test_decode_output_of_get_grant_is_a_dict_by_field_name() -> None:
    grants = contract_abi("Grants")
    fn = grants.functions["get_grant"]
    fields = [c["name"] for c in fn.outputs[0]["components"]]
    assert fields[:3] == ["owner", "grantee", "subject"]
    assert "reads" in fields and "revoked" in fields


def test_decode_output_refuses_short_data() -> None:
    with pytest.raises(AbiError, match="role_of"):
        contract_abi("Members").decode_output("role_of", b"\x00" * 5)
    with pytest.raises(AbiError):
        contract_abi("Members").decode_output("nope", b"")


# -- logs -------------------------------------------------------------------------------------


def _log_of(ev: dict[str, Any], values: list[Any]) -> tuple[list[bytes], bytes]:
    indexed = [(p, v) for p, v in zip(ev["inputs"], values, strict=True) if p.get("indexed")]
    plain = [(p, v) for p, v in zip(ev["inputs"], values, strict=True) if not p.get("indexed")]
    sig = f"{ev['name']}({','.join(abi_type(p) for p in ev['inputs'])})"
    topics = [keccak(sig.encode())] + [encode([abi_type(p)], [v]) for p, v in indexed]
    return topics, encode([abi_type(p) for p, _ in plain], [v for _, v in plain])


@pytest.mark.parametrize(("contract", "ev"), EVENTS, ids=EV_IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decode_log_roundtrip(contract: str, ev: dict[str, Any], data: st.DataObject) -> None:
    abi = contract_abi(contract)
    values = [data.draw(strategy_for(p), label=p["name"]) for p in ev["inputs"]]
    topics, payload = _log_of(ev, values)
    assert topics[0] == abi.topic(ev["name"])
    out = abi.decode_log(topics, payload)
    assert isinstance(out, DecodedLog)
    assert out.event == ev["name"]
    assert list(out.args) == [p["name"] for p in ev["inputs"]]  # in declaration order
    assert [norm(p, out.args[p["name"]]) for p in ev["inputs"]] == values


@pytest.mark.parametrize(("contract", "ev"), EVENTS, ids=EV_IDS)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decode_log_refuses_wrong_topic_counts(contract: str, ev: dict[str, Any],
                                               data: st.DataObject) -> None:
    abi = contract_abi(contract)
    values = [data.draw(strategy_for(p)) for p in ev["inputs"]]
    topics, payload = _log_of(ev, values)
    extra = data.draw(st.binary(min_size=32, max_size=32))
    for wrong in (topics[:-1] if len(topics) > 1 else None, [*topics, extra],
                  [*topics, extra, extra]):
        if wrong is None:
            continue
        with pytest.raises(AbiError, match="indexed topics"):
            abi.decode_log(wrong, payload)


def test_decode_log_refuses_anonymous_unknown_and_malformed_logs() -> None:
    grants = contract_abi("Grants")
    with pytest.raises(AbiError, match="anonymous"):
        grants.decode_log([], b"")
    with pytest.raises(AbiError, match="not an event"):
        grants.decode_log([b"\x00" * 32], b"")
    # an event of another contract
    records_topic = contract_abi("Records").topic("RecordRemoved")
    with pytest.raises(AbiError, match="not an event"):
        grants.decode_log([records_topic, b"\x00" * 32, b"\x00" * 32, b"\x00" * 32], b"")
    # right topics, truncated data
    topic = grants.topic("Revoked")
    with pytest.raises(AbiError, match="malformed"):
        grants.decode_log([topic, (1).to_bytes(32, "big"), b"\x01" * 32], b"\x00" * 31)
    with pytest.raises(AbiError, match="no event"):
        grants.topic("Nope")


# -- revert reasons ---------------------------------------------------------------------------

ERROR_SELECTOR = keccak(b"Error(string)")[:4]


@settings(max_examples=100, deadline=None)
@given(message=text)
def test_revert_reason_parses_error_string(message: str) -> None:
    assert revert_reason(ERROR_SELECTOR + encode(["string"], [message])) == message


@pytest.mark.parametrize("output", [
    b"",
    b"\x08\xc3",  # a prefix of the selector
    ERROR_SELECTOR,  # no payload
    ERROR_SELECTOR + b"\x00" * 31,  # truncated
    ERROR_SELECTOR + encode(["uint256"], [2**200]),  # offset points nowhere
    keccak(b"Panic(uint256)")[:4] + encode(["uint256"], [0x11]),
    b"\x00" * 4 + encode(["string"], ["not an Error(string)"]),
    encode(["string"], ["no selector"]),
])
def test_revert_reason_is_none_for_anything_else(output: bytes) -> None:
    assert revert_reason(output) is None


@settings(max_examples=100, deadline=None)
@given(output=st.binary(max_size=200))
def test_revert_reason_never_raises(output: bytes) -> None:
    out = revert_reason(output)
    assert out is None or (output[:4] == ERROR_SELECTOR and isinstance(out, str))
