"""What a forwarding node passes back from a custodian (``custodian_answer``): whatever the
custodian sends, only a key-service answer, or nothing (the route then answers 502)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.api.custodian import MAX_FORWARD_ANSWER
from yilian.api.routes.records import KeyPublic, custodian_answer

RID = bytes.fromhex("11" * 32)
KEY = {"record_id": "0x" + RID.hex(), "version": 1, "wrapped_key": "0xab",
       "receipt_tx": None, "receipt_block_number": None, "receipt_block_hash": None,
       "custodian": "c1"}
ERROR = {"error": {"reason": "grant_revoked", "message": "the owner revoked this grant"}}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def _mutated(doc: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Near-misses of a valid document: a field dropped, changed or added."""
    keys = sorted(doc)
    return st.one_of(
        st.sampled_from(keys).map(lambda k: {x: v for x, v in doc.items() if x != k}),
        st.tuples(st.sampled_from(keys), json_values).map(lambda kv: {**doc, kv[0]: kv[1]}),
        st.tuples(st.text(min_size=1, max_size=8), json_values).map(
            lambda kv: {**doc, kv[0]: kv[1]}),
    )


bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.one_of(st.just(KEY), st.just(ERROR), _mutated(KEY), _mutated(ERROR),
              _mutated(ERROR["error"]).map(lambda e: {"error": e})
              ).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@settings(max_examples=200, deadline=None)
@given(status=st.integers(100, 599), body=bodies)
def test_only_a_key_service_answer_is_passed_on(status: int, body: bytes) -> None:
    out = custodian_answer(status, body, RID)
    if out is None:
        return
    code, doc = out
    assert code == status
    if status == 200:
        key = KeyPublic.model_validate(doc)
        assert key.record_id == "0x" + RID.hex() and set(doc) == set(KEY)
    else:
        assert 400 <= status < 600
        assert set(doc) == {"error"}
        assert {"reason", "message"} <= set(doc["error"]) <= {"reason", "message", "item",
                                                             "record_id"}
        assert isinstance(doc["error"]["reason"], str)
        assert isinstance(doc["error"]["message"], str)


def test_the_documented_shapes_pass_and_redirects_never_do() -> None:
    assert custodian_answer(200, json.dumps(KEY).encode(), RID) == (200, KEY)
    assert custodian_answer(403, json.dumps(ERROR).encode(), RID) == (403, ERROR)
    for status in (301, 302, 303, 307, 308, 201, 204, 100):
        assert custodian_answer(status, json.dumps(KEY).encode(), RID) is None
        assert custodian_answer(status, json.dumps(ERROR).encode(), RID) is None
    assert custodian_answer(200, json.dumps(KEY).encode(), bytes(32)) is None  # other record
    item = {"error": {**ERROR["error"], "item": 3, "record_id": "0x" + RID.hex(), "x": 1}}
    assert custodian_answer(403, json.dumps(item).encode(), RID) == (
        403, {"error": {**ERROR["error"], "item": 3, "record_id": "0x" + RID.hex()}})
    huge = json.dumps({**ERROR, "error": {**ERROR["error"], "pad": "x" * MAX_FORWARD_ANSWER}})
    assert custodian_answer(403, huge.encode(), RID) is None
