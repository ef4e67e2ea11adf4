"""The data standard: examples validate, every bad field is named, canonical bytes are
unique and strictly parsed, and arbitrary input only ever raises the documented errors."""

from __future__ import annotations

import json
import unicodedata
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.protocol import credit_code as cc
from yilian.protocol import standard as sd
from yilian.protocol.standard import (
    CanonicalError,
    FieldError,
    RecordInvalid,
    RecordType,
    canonical_bytes,
    example_record,
    parse_canonical,
    validate_record,
)

SUBJECT = "914403001922038216"
OTHER = "9144030071526726XG"
ALL_TYPES = list(RecordType)


def fields_of(exc: pytest.ExceptionInfo[RecordInvalid]) -> set[str]:
    return {e.field for e in exc.value.errors}


def invalid(rtype: RecordType, payload: Any, **kw: Any) -> RecordInvalid:
    with pytest.raises(RecordInvalid) as info:
        validate_record(rtype, payload, **kw)
    assert info.value.rtype == rtype
    assert info.value.errors
    return info.value


def resident_id(first17: str) -> str:
    return first17 + sd.resident_id_check_character(first17)


# ------------------------------------------------------------------ record types


def test_record_types_and_labels() -> None:
    assert [(t.value, t.label) for t in RecordType] == [
        (1, "basic"), (2, "qualification"), (3, "performance"), (4, "personnel"),
        (5, "credit"), (6, "supervision"), (7, "project"),
    ]
    assert sd.SCHEMA_VERSION == 1
    for t in RecordType:
        assert RecordType.parse(t) is t
        assert RecordType.parse(t.value) is t
        assert RecordType.parse(t.label) is t
        assert RecordType.parse(str(t.value)) is t
        assert issubclass(sd.model_for(t), sd.RecordModel)


@pytest.mark.parametrize("bad", [0, 8, True, "Basic", "", "blacklist", None, 1.0])
def test_unknown_type_is_field_type(bad: Any) -> None:
    with pytest.raises(RecordInvalid) as info:
        validate_record(bad, {})
    assert fields_of(info) == {"type"}
    assert info.value.rtype is None
    assert "basic" in str(info.value)
    with pytest.raises(RecordInvalid):
        sd.model_for(bad)
    with pytest.raises(RecordInvalid):
        canonical_bytes(bad, {})


def test_default_owner_covers_every_type() -> None:
    assert set(sd.DEFAULT_OWNER) == set(RecordType)
    assert set(sd.DEFAULT_OWNER.values()) == {sd.OWNER_SUBJECT, sd.OWNER_CENTER}
    for t in (RecordType.BASIC, RecordType.QUALIFICATION, RecordType.PERFORMANCE,
              RecordType.PERSONNEL):
        assert sd.DEFAULT_OWNER[t] == "subject"
    for t in (RecordType.CREDIT, RecordType.SUPERVISION, RecordType.PROJECT):
        assert sd.DEFAULT_OWNER[t] == "center"


@pytest.mark.parametrize("rtype", ALL_TYPES)
def test_json_schema_describes_model(rtype: RecordType) -> None:
    schema = sd.json_schema(rtype)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(sd.model_for(rtype).model_fields)
    assert schema["x-yilian-record-type"] == rtype.label
    json.dumps(schema)  # JSON-able
    assert set(schema.get("required", [])) <= set(example_record(rtype, SUBJECT))


# ---------------------------------------------------------------------- examples


@pytest.mark.parametrize("rtype", ALL_TYPES)
def test_examples_validate_and_round_trip(rtype: RecordType) -> None:
    ex = example_record(rtype, SUBJECT)
    assert validate_record(rtype, ex) == ex
    assert validate_record(rtype, ex, subject=SUBJECT) == ex
    assert validate_record(rtype.label, ex) == ex
    b = canonical_bytes(rtype, ex)
    assert b == canonical_bytes(int(rtype), ex, subject=SUBJECT)
    assert parse_canonical(b) == (rtype, sd.SCHEMA_VERSION, ex)
    head = json.loads(b)
    assert head["type"] == rtype.label and head["schema"] == 1 and head["data"] == ex
    assert example_record(rtype, SUBJECT) is not ex  # fresh each call
    assert sd.model_for(rtype).model_validate(ex).model_dump(mode="json") == ex


def test_example_places_subject() -> None:
    assert example_record(RecordType.BASIC, OTHER)["credit_code"] == OTHER
    assert example_record(RecordType.PERSONNEL, OTHER)["unit_credit_code"] == OTHER
    perf = example_record(RecordType.PERFORMANCE, OTHER)
    assert perf["winning_bidder"]["credit_code"] == OTHER
    assert perf["tenderer"]["credit_code"] != OTHER
    assert example_record(RecordType.CREDIT, OTHER)["blacklist"][0]["subject_credit_code"] == OTHER
    assert example_record(RecordType.PROJECT, OTHER)["tenderer"]["credit_code"] == OTHER
    with pytest.raises(RecordInvalid) as info:
        example_record(RecordType.BASIC, "914403001922038217")
    assert fields_of(info) == {"subject"}


def test_normalisation_fills_defaults_and_keeps_strings() -> None:
    ex = example_record(RecordType.PERFORMANCE, SUBJECT)
    minimal = {k: v for k, v in ex.items()
               if k not in ("currency", "completion_date", "evaluation")}
    out = validate_record(RecordType.PERFORMANCE, minimal)
    assert out["currency"] == "CNY"
    assert out["completion_date"] is None and out["evaluation"] is None
    assert out["contract_amount"] == "38650000.00"
    assert parse_canonical(canonical_bytes(RecordType.PERFORMANCE, minimal))[2] == out
    # Python callers may pass dates and tuples.
    py = {**ex, "signing_date": date(2022, 5, 20), "completion_date": None}
    assert validate_record(RecordType.PERFORMANCE, py)["signing_date"] == "2022-05-20"


# ------------------------------------------------------------- field-level errors


def test_two_bad_fields_are_both_named() -> None:
    ex = example_record(RecordType.BASIC, SUBJECT)
    bad = {**ex, "region_code": "990000", "contact": {"name": "李娜", "phone": "12345"}}
    err = invalid(RecordType.BASIC, bad)
    assert set(err.fields) == {"region_code", "contact.phone"}
    text = str(err)
    assert "region_code:" in text and "contact.phone:" in text
    assert "2 problems" in text


def test_every_bad_field_is_named() -> None:
    ex = example_record(RecordType.CREDIT, SUBJECT)
    entry = {**ex["blacklist"][0], "subject_credit_code": "914403001922038217",
             "decision_date": "2023-13-01", "confined_actions": [], "extra": 1}
    bad = {**ex, "blacklist": [entry], "scores": [{**ex["scores"][0], "score": -1}]}
    err = invalid(RecordType.CREDIT, bad)
    assert set(err.fields) == {
        "blacklist.0.subject_credit_code", "blacklist.0.decision_date",
        "blacklist.0.confined_actions", "blacklist.0.extra", "scores.0.score",
    }


def test_missing_and_extra_fields() -> None:
    ex = example_record(RecordType.QUALIFICATION, SUBJECT)
    bad = {k: v for k, v in ex.items() if k != "level"} | {"grade": "一级"}
    err = invalid(RecordType.QUALIFICATION, bad)
    assert {(e.field, e.message.split(";")[0]) for e in err.errors} == {
        ("level", "required field is missing"), ("grade", "unknown field"),
    }
    nested = {**example_record(RecordType.BASIC, SUBJECT)}
    nested["basic_account"] = {**nested["basic_account"], "swift": "PCBCCNBJ"}
    assert invalid(RecordType.BASIC, nested).fields == ("basic_account.swift",)


def test_basic_credit_code_checked() -> None:
    ex = example_record(RecordType.BASIC, SUBJECT)
    err = invalid(RecordType.BASIC, {**ex, "credit_code": "914403001922038217"})
    assert err.fields == ("credit_code",)
    assert "check character is '7', expected '6'" in err.errors[0].message
    err = invalid(RecordType.BASIC, {**ex, "credit_code": OTHER.lower()})
    assert err.fields == ("credit_code",)
    assert "uppercase" in err.errors[0].message
    # valid code, but not the subject's
    err = invalid(RecordType.BASIC, {**ex, "credit_code": OTHER}, subject=SUBJECT)
    assert err.fields == ("credit_code",)
    assert SUBJECT in str(err) and OTHER in str(err)
    assert validate_record(RecordType.BASIC, {**ex, "credit_code": OTHER}, subject=OTHER)


@pytest.mark.parametrize("rtype", ALL_TYPES)
def test_invalid_subject_is_named(rtype: RecordType) -> None:
    ex = example_record(rtype, SUBJECT)
    err = invalid(rtype, ex, subject="91440300192203821")
    assert "subject" in err.fields


def test_payload_must_be_object() -> None:
    bads: list[Any] = [[], "x", None, 3]
    for bad in bads:
        err = invalid(RecordType.PROJECT, bad)
        assert err.fields == ("",)
        assert "JSON object" in str(err)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("0", True), ("0.5", True), ("50000000.00", True), ("1.123456", True),
     ("01", False), ("1.", False), (".5", False), ("-1", False), ("1e6", False),
     ("1,000", False), (" 1", False), ("1.1234567", False), ("1" * 19, False),
     (1000, False), (1.5, False), (Decimal("1"), False), (None, False), (True, False)],
)
def test_decimal_strings(value: Any, ok: bool) -> None:
    ex = example_record(RecordType.BASIC, SUBJECT)
    payload = {**ex, "registered_capital": value}
    if ok:
        assert validate_record(RecordType.BASIC, payload)["registered_capital"] == value
    else:
        assert invalid(RecordType.BASIC, payload).fields == ("registered_capital",)


def test_numbers_get_a_helpful_message() -> None:
    ex = example_record(RecordType.PERFORMANCE, SUBJECT)
    err = invalid(RecordType.PERFORMANCE, {**ex, "contract_amount": 1.5})
    assert "decimal string" in str(err) and "JSON number" in str(err)


def test_positive_amounts() -> None:
    perf = example_record(RecordType.PERFORMANCE, SUBJECT)
    assert invalid(RecordType.PERFORMANCE, {**perf, "contract_amount": "0.00"}).fields == (
        "contract_amount",)
    proj = example_record(RecordType.PROJECT, SUBJECT)
    sections = [{**proj["sections"][0], "estimate_amount": "0"}]
    err = invalid(RecordType.PROJECT, {**proj, "sections": sections, "estimate_total": "0"})
    assert set(err.fields) == {"sections.0.estimate_amount", "estimate_total"}


def test_date_order_and_format() -> None:
    q = example_record(RecordType.QUALIFICATION, SUBJECT)
    err = invalid(RecordType.QUALIFICATION, {**q, "valid_to": "2021-03-14"})
    assert err.fields == ("valid_to",)
    assert "before valid_from" in str(err)
    assert validate_record(RecordType.QUALIFICATION, {**q, "valid_to": q["valid_from"]})
    p = example_record(RecordType.PERFORMANCE, SUBJECT)
    assert invalid(RecordType.PERFORMANCE, {**p, "completion_date": "2022-05-19"}).fields == (
        "completion_date",)
    for bad in ["2021/03/15", "20210315", "2021-3-15", "2021-02-29", "2021-03-15T00:00:00",
                "２０２１-03-15", 20210315]:
        assert invalid(RecordType.QUALIFICATION, {**q, "issue_date": bad}).fields == (
            "issue_date",)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("", "empty"), ("   ", "empty"), (" 张伟", "whitespace"), ("张伟\u3000", "whitespace"),
     ("张\n伟", "control character"), ("张\x00伟", "control character"),
     ("\u202e伟张", "control character"), ("x" * 201, "at most 200"),
     ("e\u0301", "NFC"), ("a\u2028b", "control character"), ("\ud800", "surrogate"),
     (b"abc", "string"), (5, "string")],
)
def test_text_rules(value: Any, problem: str) -> None:
    ex = example_record(RecordType.BASIC, SUBJECT)
    err = invalid(RecordType.BASIC, {**ex, "legal_representative": value})
    assert err.fields == ("legal_representative",)
    assert problem in err.errors[0].message


def test_free_text_allows_lines() -> None:
    p = example_record(RecordType.PERFORMANCE, SUBJECT)
    text = "第一行\n第二行\t备注"
    assert validate_record(RecordType.PERFORMANCE, {**p, "evaluation": text})["evaluation"] == text
    assert invalid(RecordType.PERFORMANCE, {**p, "evaluation": "a\r\nb"}).fields == (
        "evaluation",)


@pytest.mark.parametrize(
    ("field", "value"),
    [("region_code", "44030"), ("region_code", "000000"), ("region_code", "４４０３００"),
     ("currency", "cny"), ("currency", "RMB1"), ("role", "winner"), ("status", "ACTIVE"),
     ("entity_type", 1)],
)
def test_codes_and_enums(field: str, value: Any) -> None:
    ex = example_record(RecordType.BASIC, SUBJECT)
    assert invalid(RecordType.BASIC, {**ex, field: value}).fields == (field,)


@pytest.mark.parametrize(
    ("phone", "ok"),
    [("13800138000", True), ("0755-83212345", True), ("010-12345678-123", True),
     ("075583212345", True), ("400-123-4567", True), ("+8613800138000", False),
     ("138 0013 8000", False), ("12800138000", False), ("0755-0321234", False)],
)
def test_phone(phone: str, ok: bool) -> None:
    ex = example_record(RecordType.BASIC, SUBJECT)
    payload = {**ex, "contact": {"name": "李娜", "phone": phone}}
    if ok:
        validate_record(RecordType.BASIC, payload)
    else:
        assert invalid(RecordType.BASIC, payload).fields == ("contact.phone",)


def test_lists() -> None:
    credit = example_record(RecordType.CREDIT, SUBJECT)
    err = invalid(RecordType.CREDIT, {"blacklist": [], "withdrawals": [], "scores": []})
    assert err.fields == ("",)
    assert "at least one" in str(err)
    w = {"entry_code": "SZ-1", "withdrawal_date": "2024-02-01", "reason": "信用修复完成"}
    assert validate_record(RecordType.CREDIT, {"withdrawals": [w]})["blacklist"] == []
    err = invalid(RecordType.CREDIT, {"withdrawals": [w, w]})
    assert err.fields == ("withdrawals.1.entry_code",)
    err = invalid(RecordType.CREDIT, {**credit, "blacklist": credit["blacklist"][0]})
    assert err.fields == ("blacklist",)
    assert invalid(RecordType.SUPERVISION, {"findings": []}).fields == ("findings",)
    assert invalid(RecordType.SUPERVISION, {}).fields == ("findings",)
    proj = example_record(RecordType.PROJECT, SUBJECT)
    dup = [proj["sections"][0], {**proj["sections"][1], "section_code": "001"}]
    err = invalid(RecordType.PROJECT, {**proj, "sections": dup})
    assert err.fields == ("sections.1.section_code",)
    too_many = [{**w, "entry_code": f"E{i}"} for i in range(1001)]
    assert invalid(RecordType.CREDIT, {"withdrawals": too_many}).fields == ("withdrawals",)


# ---------------------------------------------------------------- resident IDs


def test_resident_id_check_digit() -> None:
    # GB 11643 worked example: 11010519491231002X
    assert sd.resident_id_check_character("11010519491231002") == "X"
    assert sd.resident_id_check_character("44030419850315002") in "0123456789X"
    with pytest.raises(ValueError):
        sd.resident_id_check_character("1101051949123100X")


def test_resident_id_in_personnel() -> None:
    ex = example_record(RecordType.PERSONNEL, SUBJECT)
    good = "11010519491231002X"
    assert validate_record(RecordType.PERSONNEL, {**ex, "id_number": good})["id_number"] == good
    for bad, hint in [("11010519491231002x", "uppercase"), ("110105194912310021", "check"),
                      ("11010519491331002X", "birth date"), ("1101051949123100", "18"),
                      ("1101051949123100AX", "digits")]:
        err = invalid(RecordType.PERSONNEL, {**ex, "id_number": bad})
        assert err.fields == ("id_number",)
        assert hint in err.errors[0].message
        assert bad not in str(err)  # never echo personal ID numbers
    # every single-digit substitution is caught
    for i in range(17):
        for d in "0123456789":
            if d != good[i]:
                bad = good[:i] + d + good[i + 1:]
                with pytest.raises(RecordInvalid):
                    validate_record(RecordType.PERSONNEL, {**ex, "id_number": bad})
    passport = {**ex, "id_type": "passport", "id_number": "E12345678"}
    assert validate_record(RecordType.PERSONNEL, passport)["id_type"] == "passport"
    err = invalid(RecordType.PERSONNEL, {**passport, "id_number": "e12345678"})
    assert err.fields == ("id_number",)
    other = {**ex, "id_type": "other", "id_number": "南字第012345号"}
    assert validate_record(RecordType.PERSONNEL, other)
    # an invalid id_type is reported once, not also as a bad id_number
    err = invalid(RecordType.PERSONNEL, {**ex, "id_type": "driving_licence"})
    assert err.fields == ("id_type",)


@given(st.dates(date(1900, 1, 1), date(2030, 12, 31)), st.integers(0, 999),
       st.sampled_from(["110105", "440304", "650102"]))
def test_resident_ids_with_valid_check_pass(birth: date, seq: int, region: str) -> None:
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    ex = example_record(RecordType.PERSONNEL, SUBJECT)
    number = resident_id(first17)
    assert validate_record(RecordType.PERSONNEL, {**ex, "id_number": number})["id_number"] == number
    wrong = first17 + ("0" if number[-1] != "0" else "1")
    with pytest.raises(RecordInvalid):
        validate_record(RecordType.PERSONNEL, {**ex, "id_number": wrong})


# ------------------------------------------------------------------- canonical


def test_canonical_bytes_format() -> None:
    ex = example_record(RecordType.BASIC, SUBJECT)
    b = canonical_bytes(RecordType.BASIC, ex)
    assert b.startswith(b'{"data":{"basic_account":')
    assert b.endswith(b'"schema":1,"type":"basic"}')
    assert "深圳市前海建设工程有限公司".encode() in b
    assert b" " not in b.replace("深圳".encode(), b"")
    assert b == json.dumps(json.loads(b), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()


def _variants(b: bytes) -> list[bytes]:
    obj = json.loads(b)
    data = obj["data"]
    out = [
        json.dumps(obj, sort_keys=True, ensure_ascii=False).encode(),  # whitespace
        json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(),  # \\u escapes
        json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode(),  # unsorted
        b + b"\n",
        b" " + b,
        "\ufeff".encode() + b,
    ]
    dropped = {k: v for k, v in data.items() if v is not None and v != []}
    if dropped != data:
        out.append(json.dumps({**obj, "data": dropped}, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode())
    return [v for v in out if v != b]


@pytest.mark.parametrize("rtype", ALL_TYPES)
def test_parse_canonical_rejects_non_canonical(rtype: RecordType) -> None:
    b = canonical_bytes(rtype, example_record(rtype, SUBJECT))
    for variant in _variants(b):
        with pytest.raises(ValueError) as info:
            parse_canonical(variant)
        assert isinstance(info.value, CanonicalError | RecordInvalid)


def test_parse_canonical_errors() -> None:
    ex = example_record(RecordType.PROJECT, SUBJECT)
    good = canonical_bytes(RecordType.PROJECT, ex)

    def enc(obj: Any) -> bytes:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()

    with pytest.raises(RecordInvalid) as info:
        parse_canonical(enc({"type": "projects", "schema": 1, "data": ex}))
    assert fields_of(info) == {"type"}
    with pytest.raises(RecordInvalid) as info:
        parse_canonical(enc({"type": 7, "schema": 1, "data": ex}))
    assert fields_of(info) == {"type"}
    for schema in [2, 0, True, "1", 1.0]:
        with pytest.raises(RecordInvalid) as info:
            parse_canonical(enc({"type": "project", "schema": schema, "data": ex}))
        assert fields_of(info) == {"schema"}
    with pytest.raises(RecordInvalid) as info:
        parse_canonical(enc({"type": "project", "schema": 1, "data": {**ex, "x": 1}}))
    assert fields_of(info) == {"x"}
    with pytest.raises(RecordInvalid) as info:
        parse_canonical(enc({"type": "project", "schema": 1, "data": [ex]}))
    assert fields_of(info) == {""}
    for bad, msg in [
        (b"\xff" + good, "UTF-8"),
        (b"{", "not valid JSON"),
        (b"[]", "exactly the keys"),
        (enc({"type": "project", "schema": 1, "data": ex, "sig": "00"}), "exactly the keys"),
        (good.replace(b'"schema":1', b'"schema":1,"schema":1'), "duplicate"),
        (good.replace(b'"schema":1', b'"schema":NaN'), "NaN"),
        (b"[" * 100000 + b"]" * 100000, "JSON"),
        (b" " * (sd.MAX_CANONICAL_BYTES + 1), "at most"),
    ]:
        with pytest.raises(CanonicalError, match=msg):
            parse_canonical(bad)
    with pytest.raises(CanonicalError):
        parse_canonical(good.decode())  # type: ignore[arg-type]
    assert parse_canonical(bytearray(good))[2] == ex


# ------------------------------------------------------------------ properties

_single_line = (
    st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
            max_size=40)
    .map(lambda s: unicodedata.normalize("NFC", s).strip())
    .filter(lambda s: bool(s) and s == s.strip() and unicodedata.is_normalized("NFC", s)
            and not set(s) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
)
_multi_line = st.lists(_single_line, min_size=1, max_size=4).map("\n".join)
_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999999"), places=2)
_dates = st.dates(date(1990, 1, 1), date(2099, 12, 31))
_codes = st.text(cc.ALPHABET, min_size=17, max_size=17).map(cc.make_code)
_idents = st.from_regex(r"[0-9A-Za-z][0-9A-Za-z._/\-]{0,20}", fullmatch=True)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[RecordType, str, dict[str, Any]]:
    """A random record: an example with its free-text, dates, amounts and codes redrawn."""
    rtype = draw(st.sampled_from(ALL_TYPES))
    subject = draw(_codes)
    r = example_record(rtype, subject)
    d1, d2 = sorted([draw(_dates), draw(_dates)])
    amount = str(draw(_amounts))
    if rtype is RecordType.BASIC:
        r["legal_name"] = draw(_single_line)
        r["legal_representative"] = draw(_single_line)
        r["industry"] = draw(_single_line)
        r["registered_capital"] = draw(st.sampled_from(["0", amount]))
        r["contact"]["name"] = draw(_single_line)
    elif rtype is RecordType.QUALIFICATION:
        r["certificate_number"] = draw(_single_line)
        r["issue_date"], r["valid_from"], r["valid_to"] = d1.isoformat(), d1.isoformat(), \
            d2.isoformat()
        r["level"] = draw(_single_line)
    elif rtype is RecordType.PERFORMANCE:
        r["project_name"] = draw(_single_line)
        r["tenderer"]["credit_code"] = draw(_codes)
        r["contract_amount"] = amount
        r["signing_date"] = d1.isoformat()
        r["completion_date"] = draw(st.sampled_from([None, d2.isoformat()]))
        r["evaluation"] = draw(st.none() | _multi_line)
    elif rtype is RecordType.PERSONNEL:
        r["name"] = draw(_single_line)
        r["title"] = draw(st.none() | _single_line)
        r["id_number"] = resident_id(f"440304{d1:%Y%m%d}{draw(st.integers(0, 999)):03d}")
        r["practice_certificates"] = [
            {"number": draw(_single_line), "specialty": draw(_single_line),
             "valid_to": draw(_dates).isoformat()}
            for _ in range(draw(st.integers(0, 3)))
        ]
    elif rtype is RecordType.CREDIT:
        entry = r["blacklist"][0]
        entry["reason"] = draw(_multi_line)
        entry["entry_code"] = draw(_idents)
        entry["decision_date"] = d1.isoformat()
        entry["confined_actions"] = draw(st.lists(_single_line, min_size=1, max_size=3))
        r["withdrawals"] = [{"entry_code": draw(_idents), "withdrawal_date": d2.isoformat(),
                             "reason": draw(_multi_line)}]
        r["scores"][0]["score"] = draw(st.sampled_from(["0", "100", amount]))
    elif rtype is RecordType.SUPERVISION:
        for f in r["findings"]:
            f["description"] = draw(_multi_line)
            f["decision_date"] = draw(_dates).isoformat()
            f["amount"] = draw(st.none() | st.just(amount))
    else:
        r["project_name"] = draw(_single_line)
        r["project_code"] = draw(_idents)
        r["sections"] = [
            {"section_code": f"{i:03d}", "section_name": draw(_single_line),
             "estimate_amount": str(draw(_amounts))}
            for i in range(draw(st.integers(1, 4)))
        ]
        r["estimate_total"] = amount
    return rtype, subject, r


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_canonical_round_trip(case: tuple[RecordType, str, dict[str, Any]]) -> None:
    rtype, subject, payload = case
    normal = validate_record(rtype, payload, subject=subject)
    assert validate_record(rtype, normal, subject=subject) == normal
    b = canonical_bytes(rtype, payload, subject=subject)
    assert parse_canonical(b) == (rtype, sd.SCHEMA_VERSION, normal)
    assert canonical_bytes(rtype, normal) == b
    for variant in _variants(b):
        with pytest.raises(ValueError):
            parse_canonical(variant)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=10,
)


@st.composite
def fuzzed(draw: st.DrawFn) -> tuple[RecordType, dict[str, Any]]:
    """An example record with some fields replaced by arbitrary JSON values."""
    rtype = draw(st.sampled_from(ALL_TYPES))
    r = example_record(rtype, SUBJECT)
    keys = draw(st.lists(st.sampled_from(sorted(r)), max_size=3, unique=True))
    for k in keys:
        r[k] = draw(_json)
    if draw(st.booleans()):
        r[draw(st.text(max_size=8))] = draw(_json)
    return rtype, r


@settings(max_examples=300)
@given(fuzzed())
def test_arbitrary_payloads_only_raise_record_invalid(case: tuple[RecordType, dict[str, Any]]
                                                      ) -> None:
    rtype, payload = case
    try:
        out = validate_record(rtype, payload)
    except RecordInvalid as exc:
        assert exc.errors and all(isinstance(e, FieldError) for e in exc.errors)
        assert all(e.message for e in exc.errors)
        return
    assert parse_canonical(canonical_bytes(rtype, out))[2] == out


@settings(max_examples=300)
@given(st.one_of(
    st.binary(max_size=200),
    mutated().map(lambda c: canonical_bytes(c[0], c[2])).flatmap(
        lambda b: st.integers(0, len(b) - 1).flatmap(
            lambda i: st.integers(0, 255).map(lambda x: b[:i] + bytes([x]) + b[i + 1:]))),
))
def test_arbitrary_bytes_only_raise_value_error(b: bytes) -> None:
    try:
        rtype, _schema, data = parse_canonical(b)
    except (CanonicalError, RecordInvalid):
        return
    assert canonical_bytes(rtype, data) == b


def test_errors_are_frozen_and_printable() -> None:
    e = FieldError("contact.phone", "bad")
    with pytest.raises(AttributeError):
        e.field = "x"  # type: ignore[misc]
    assert str(e) == "contact.phone: bad"
    assert str(FieldError("", "whole")) == "(record): whole"
    with pytest.raises(ValueError):
        RecordInvalid([])
    ri = RecordInvalid([e], RecordType.BASIC)
    assert ri.rtype is RecordType.BASIC and "invalid basic record" in str(ri)
    assert isinstance(ri, ValueError)
    model = sd.model_for(RecordType.BASIC).model_validate(example_record(RecordType.BASIC,
                                                                          SUBJECT))
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen
        model.legal_name = "x"  # type: ignore[attr-defined]


def test_dates_accept_only_iso() -> None:
    q = example_record(RecordType.QUALIFICATION, SUBJECT)
    d = date(2021, 3, 15)
    out = validate_record(RecordType.QUALIFICATION,
                          {**q, "issue_date": d, "valid_to": d + timedelta(days=1)})
    assert out["valid_to"] == "2021-03-16"
