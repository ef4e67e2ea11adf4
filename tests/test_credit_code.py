"""Unified social credit codes (GB 32100-2015): real codes pass, every single-character
change is caught, errors name the position, and the bytes32 form round-trips strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.protocol import credit_code as cc
from yilian.protocol.credit_code import CreditCodeError

REAL = ["914403001922038216", "9144030071526726XG"]

first17s = st.text(alphabet=cc.ALPHABET, min_size=17, max_size=17)
codes = first17s.map(cc.make_code)


@pytest.mark.parametrize("code", REAL)
def test_real_codes_validate(code: str) -> None:
    assert cc.validate(code) == code
    assert cc.is_valid(code)
    assert cc.check_character(code[:17]) == code[17]
    assert cc.make_code(code[:17]) == code
    assert cc.organisation_code_warning(code) is None


@pytest.mark.parametrize("code", REAL)
def test_every_single_substitution_is_rejected(code: str) -> None:
    for i in range(len(code)):
        for ch in cc.ALPHABET:
            if ch == code[i]:
                continue
            bad = code[:i] + ch + code[i + 1 :]
            assert not cc.is_valid(bad), bad
            with pytest.raises(CreditCodeError) as info:
                cc.validate(bad)
            assert "check character is" in info.value.reason
            assert info.value.code == bad


def test_alphabet_and_weights() -> None:
    assert len(cc.ALPHABET) == 31
    assert not set("IOSVZ") & set(cc.ALPHABET)
    assert cc.WEIGHTS[:5] == (1, 3, 9, 27, 19)
    assert len(cc.WEIGHTS) == 17


def test_wrong_length_is_named() -> None:
    for bad in ["", "91440300192203821", "9144030019220382166"]:
        with pytest.raises(CreditCodeError) as info:
            cc.validate(bad)
        assert f"got {len(bad)}" in str(info.value)
        assert "18" in info.value.reason
        assert info.value.position is None


@pytest.mark.parametrize(
    ("bad", "pos", "hint"),
    [
        ("91440300I922038216", 9, "never contain I"),
        ("9144030071526726xG", 17, "lowercase"),
        ("914403001922038 16", 16, "not allowed"),
        ("914403001922038216"[:5] + "中" + "914403001922038216"[6:], 6, "not allowed"),
        ("o14403001922038216", 1, "never contain"),
    ],
)
def test_bad_character_names_position(bad: str, pos: int, hint: str) -> None:
    with pytest.raises(CreditCodeError) as info:
        cc.validate(bad)
    assert info.value.position == pos
    assert f"position {pos}" in str(info.value)
    assert hint in info.value.reason


def test_lowercase_is_not_silently_accepted() -> None:
    code = "9144030071526726XG"
    with pytest.raises(CreditCodeError, match="uppercase"):
        cc.validate(code.lower())
    assert not cc.is_valid(code.lower())


def test_check_character_mismatch_message() -> None:
    with pytest.raises(CreditCodeError) as info:
        cc.validate("914403001922038217")
    assert "check character is '7', expected '6'" in str(info.value)
    assert info.value.position == 18


def test_non_strings_rejected() -> None:
    for bad in [None, 914403001922038216, b"914403001922038216"]:
        assert not cc.is_valid(bad)
        with pytest.raises(CreditCodeError):
            cc.validate(bad)  # type: ignore[arg-type]


def test_organisation_code_warning_is_soft() -> None:
    # Same organisation-code body as a real code but a wrong GB 11714 check character;
    # the credit code check character is recomputed, so the credit code is valid.
    code = cc.make_code("91440300192203822")
    assert cc.is_valid(code)
    warning = cc.organisation_code_warning(code)
    assert warning is not None
    assert "expected '1'" in warning
    with pytest.raises(CreditCodeError):
        cc.organisation_code_warning("914403001922038217")


def test_bytes32_layout_and_strictness() -> None:
    code = REAL[1]
    b = cc.to_bytes32(code)
    assert b == code.encode() + b"\x00" * 14
    assert cc.from_bytes32(b) == code
    assert cc.from_bytes32(bytearray(b)) == code
    with pytest.raises(CreditCodeError, match="32 bytes"):
        cc.from_bytes32(b[:31])
    with pytest.raises(CreditCodeError, match="byte 32"):
        cc.from_bytes32(b[:31] + b"\x01")
    with pytest.raises(CreditCodeError, match="check character"):
        cc.from_bytes32(b"914403001922038217".ljust(32, b"\x00"))
    with pytest.raises(CreditCodeError, match="not ASCII"):
        cc.from_bytes32(b"\xff" * 18 + b"\x00" * 14)
    with pytest.raises(CreditCodeError, match="position 18"):
        cc.from_bytes32(b"91440300192203821".ljust(32, b"\x00"))
    with pytest.raises(CreditCodeError):
        cc.to_bytes32("914403001922038217")


@given(first17s)
def test_make_code_always_validates(first17: str) -> None:
    code = cc.make_code(first17)
    assert len(code) == 18
    assert cc.validate(code) == code
    warning = cc.organisation_code_warning(code)
    assert warning is None or "GB 11714" in warning


@given(codes)
def test_bytes32_round_trip(code: str) -> None:
    b = cc.to_bytes32(code)
    assert len(b) == 32
    assert cc.from_bytes32(b) == code


@given(codes, st.integers(0, 17), st.sampled_from(cc.ALPHABET))
def test_single_substitution_detected(code: str, i: int, ch: str) -> None:
    bad = code[:i] + ch + code[i + 1 :]
    assert cc.is_valid(bad) == (bad == code)


@given(codes, st.integers(0, 16))
def test_adjacent_transposition_detected(code: str, i: int) -> None:
    swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    assert cc.is_valid(swapped) == (swapped == code)


@given(st.text(max_size=24))
def test_arbitrary_text_only_raises_credit_code_error(text: str) -> None:
    try:
        assert cc.validate(text) == text
    except CreditCodeError as exc:
        assert exc.reason
        assert exc.position is None or 1 <= exc.position <= len(text)
    else:
        assert cc.is_valid(text)


@given(st.binary(min_size=0, max_size=40))
def test_arbitrary_bytes_only_raise_credit_code_error(b: bytes) -> None:
    try:
        code = cc.from_bytes32(b)
    except CreditCodeError:
        return
    assert cc.to_bytes32(code) == b
