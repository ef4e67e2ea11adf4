"""The request-body scanner and strict parser (issue 8, finding 3 and the NaN part of 11).

Properties: the depth verdict equals a plain character-by-character reference on any
input (valid JSON, truncated JSON, arbitrary bracket/quote/backslash soup), and the work
is bounded per byte: the string pass is a sequence of non-overlapping matches and no quote
lies outside one (so no attempt ever failed after reading further: each byte is read by
one match or rejected on sight), and the later passes read only what the earlier ones
kept, so at most three reads per byte in all. The old string regex fails exactly that
bound on the finding's body (it rescanned from every escaped quote: quadratic).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.api.json_guard import (
    _STRING,
    MAX_JSON_DEPTH,
    JsonRejected,
    bracket_stream,
    json_too_deep,
    loads_strict,
    strings,
)


def reference_depth(data: bytes) -> int:
    """Max nesting of brackets outside strings, unclosed ones included: the obvious loop."""
    depth = best = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            best = max(best, depth)
        elif byte in b"]}":
            depth -= 1
    return best


def work(data: bytes) -> int:
    """Bytes the scan reads: the string pass, then the bracket pass, then the depth pass.

    Asserts the structure the bound rests on: string matches in order, never overlapping,
    and no quote outside them (an attempt at a quote never fails)."""
    read = last = 0
    for start, end in strings(data):
        assert last <= start < end <= len(data)
        assert b'"' not in data[last:start], f"a string start in {last}..{start} failed late"
        read += end - start
        last = end
    assert b'"' not in data[last:]
    without_strings = len(data) - read
    return len(data) + without_strings + len(bracket_stream(data))


_soup = st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b'\\"', b"\\\\", b"a",
                                  b",", b":", b" ", b"1", b"\xff", b"\\u"]), max_size=400
                 ).map(b"".join)
_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6),
              st.sampled_from(['"', "\\", "[", "]{", '\\"', "}}"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=120)


@settings(max_examples=300, deadline=None)
@given(data=_soup, limit=st.integers(0, 8))
def test_depth_verdict_matches_the_reference_on_any_bytes(data: bytes, limit: int) -> None:
    assert json_too_deep(data, limit) == (reference_depth(data) > limit)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_json_values, limit=st.integers(0, 12), cut=st.integers(0, 10_000))
def test_depth_verdict_matches_on_json_and_its_prefixes(value: Any, limit: int,
                                                        cut: int) -> None:
    text = json.dumps(value).encode()
    for data in (text, text[:cut % (len(text) + 1)]):
        assert json_too_deep(data, limit) == (reference_depth(data) > limit)


_adversarial = st.tuples(
    st.integers(0, 80), st.sampled_from([b'"', b"", b"["]),
    st.sampled_from([b'\\"', b"\\\\", b'\\"[', b"[]", b'""', b"\\", b'"\\"', b"[\"", b"{"]),
    st.integers(1, 3000), st.sampled_from([b"", b"\\", b'"', b"]"]),
).map(lambda t: b"[" * t[0] + t[1] + t[2] * t[3] + t[4])


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(_adversarial, _soup))
def test_work_per_byte_is_bounded_on_adversarial_inputs(data: bytes) -> None:
    assert work(data) <= 3 * len(data)
    assert json_too_deep(data) == (reference_depth(data) > MAX_JSON_DEPTH)


def test_the_findings_body_is_scanned_once() -> None:
    data = b"[" * 65 + b'"' + b'\\"' * 50_000
    assert work(data) == len(data) + 65 + 65  # one string to the end; 65 brackets left
    assert json_too_deep(data)


def test_the_old_string_pattern_rescans_the_findings_body() -> None:
    """Why finding 3 happened: the old pattern cannot match an unterminated string, so the
    engine retried at every escaped quote inside it, reading to the end each time."""
    old = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
    data = b"[" * 65 + b'"' + b'\\"' * 200
    failed_late = [p for p in range(len(data)) if data[p] == 0x22 and not old.match(data, p)]
    assert len(failed_late) == 201  # each read to the end: ~n^2/2 bytes in all
    assert all(_STRING.match(data, p) for p in failed_late)  # the new pattern always matches


@pytest.mark.parametrize("body", [
    b"NaN", b"[NaN]", b'{"a": Infinity}', b"-Infinity", b"[1e400]", b"-1e999",
    b'{"jsonrpc": "2.0", "id": NaN, "method": "eth_chainId"}',
])
def test_non_finite_numbers_are_refused(body: bytes) -> None:
    with pytest.raises(JsonRejected) as exc:
        loads_strict(body)
    assert exc.value.reason == "bad_json"
    assert "NaN" in exc.value.message or "too large" in exc.value.message


@pytest.mark.parametrize("body", [
    b"", b" ", b"\xff", b"\xed\xa0\x80", b"\xef\xbb\xbf{}", b"{'a': 1}", b"[1,]",
    b"9" * 5000, b'"unterminated', b"[" * 65, b"[" * 100_000, b'"\\ud800"',
    b'{"\\udfff": 1}', b'["\\ud83d x"]',
])
def test_non_json_is_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(JsonRejected) as exc:
        loads_strict(body)
    assert exc.value.reason in ("bad_json", "too_deep") and exc.value.message


def test_valid_json_is_parsed_exactly() -> None:
    value = {"a": [1, -2.5, "x\\\"]", None, True, {"b": "\U0001f600"}], "n": 10**30}
    assert loads_strict(json.dumps(value).encode()) == value
    assert loads_strict(json.dumps(value)) == value
    assert loads_strict(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    assert math.isclose(loads_strict(b"1e308"), 1e308)
    assert loads_strict(b'"\\ud83d\\ude00 \\\\ud800"') == "\U0001f600 \\ud800"
