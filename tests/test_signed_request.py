"""Signed REST requests (yilian.protocol.signed_request): signing, verification, refusals.

The node and the SDK share this module, so these tests pin its contract: what exactly is
signed (:func:`canonical_request`), that every signed field is bound by the signature, the
expiry window, and the reason tag of each refusal.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.protocol.signed_request import (
    ACCOUNT_HEADER,
    AUDIENCE_HEADER,
    EXPIRES_HEADER,
    MAX_LIFETIME_S,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TAG,
    RequestAuthError,
    SignedBy,
    SignedHeaders,
    canonical_request,
    check_audience,
    recover_signer,
    sign_request,
)

KEY = "0x" + "4f" * 32
OTHER_KEY = "0x" + "5a" * 32
ADDRESS = Account.from_key(KEY).address
OTHER_ADDRESS = Account.from_key(OTHER_KEY).address
CHAIN_ID = 7460
AUD = "9144030071526726XG"  # a center's credit code: the node the request is for
NOW = 1_700_000_000.0
HEADERS = (ACCOUNT_HEADER, AUDIENCE_HEADER, NONCE_HEADER, EXPIRES_HEADER, SIGNATURE_HEADER)

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
# Paths as an HTTP server hands them over: printable, no whitespace, may carry a query.
paths = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80
                ).map(lambda s: "/" + s)
bodies = st.binary(max_size=512)


def signed(method: str = "POST", path: str = "/v1/records", body: bytes = b"{}", *,
           key: str = KEY, chain_id: int = CHAIN_ID, lifetime_s: int = 60,
           now: float = NOW, audience: str = AUD) -> dict[str, str]:
    return sign_request(key, chain_id=chain_id, audience=audience, method=method, path=path,
                        body=body, lifetime_s=lifetime_s, now=now).as_dict()


def verify(headers: dict[str, str], method: str = "POST", path: str = "/v1/records",
           body: bytes = b"{}", *, chain_id: int = CHAIN_ID, now: float = NOW
           ) -> tuple[str, str, int]:
    out = recover_signer(headers, chain_id=chain_id, method=method, path=path, body=body,
                         now=now)
    assert out.audience == headers[AUDIENCE_HEADER]
    return out.account, out.nonce, out.expires


def refusal(headers: dict[str, str], **kwargs: Any) -> RequestAuthError:
    with pytest.raises(RequestAuthError) as err:
        verify(headers, **kwargs)
    return err.value


# -- canonical request ---------------------------------------------------------------------


def test_canonical_request_is_the_documented_line_layout() -> None:
    body = b'{"a": 1}'
    out = canonical_request(chain_id=7460, audience=AUD, method="post",
                            path="/v1/records?subject=X", expires=1_700_000_060,
                            nonce="ab" * 16,
                            account="0xAbCdEf0123456789aBcDeF0123456789ABCDEF01", body=body)
    expected = "\n".join([
        "yilian-request-v2",
        "7460",
        AUD,  # the node that is to serve the request
        "POST",  # upper-cased
        "/v1/records?subject=X",  # path with its query, verbatim
        "1700000060",
        "ab" * 16,
        "0xabcdef0123456789abcdef0123456789abcdef01",  # lower-cased
        hashlib.sha256(body).hexdigest(),
    ]).encode()
    assert out == expected
    assert TAG == "yilian-request-v2"
    assert not out.endswith(b"\n")
    assert len(out.split(b"\n")) == 9


def test_canonical_request_of_an_empty_body_hashes_the_empty_string() -> None:
    out = canonical_request(chain_id=1, audience=AUD, method="GET", path="/", expires=1,
                            nonce="0" * 32, account=ADDRESS, body=b"")
    assert out.split(b"\n")[-1] == hashlib.sha256(b"").hexdigest().encode()


def test_signature_is_eip191_personal_sign_over_the_canonical_request() -> None:
    h = sign_request(KEY, chain_id=CHAIN_ID, audience=AUD, method="GET", path="/v1/x",
                     body=b"b", now=NOW)
    message = canonical_request(chain_id=CHAIN_ID, audience=AUD, method="GET", path="/v1/x",
                                expires=h.expires, nonce=h.nonce, account=h.account, body=b"b")
    expected = Account.sign_message(encode_defunct(primitive=message), KEY).signature
    assert h.signature == "0x" + bytes(expected).hex()


# -- sign_request --------------------------------------------------------------------------


def test_sign_request_headers_shape() -> None:
    h = sign_request(KEY, chain_id=CHAIN_ID, audience=AUD, method="GET", path="/v1/x",
                     now=NOW)
    assert isinstance(h, SignedHeaders)
    assert h.audience == AUD
    assert h.account == ADDRESS  # checksum form
    assert len(h.nonce) == 32 and int(h.nonce, 16) >= 0 and h.nonce == h.nonce.lower()
    assert h.expires == int(NOW) + 60
    assert h.signature.startswith("0x") and len(h.signature) == 2 + 130
    d = h.as_dict()
    assert set(d) == set(HEADERS)
    assert d[EXPIRES_HEADER] == str(h.expires)
    assert all(isinstance(v, str) for v in d.values())


def test_sign_request_uses_a_fresh_nonce_every_call() -> None:
    nonces = {sign_request(KEY, chain_id=1, audience=AUD, method="GET", path="/", now=NOW).nonce
              for _ in range(50)}
    assert len(nonces) == 50


@pytest.mark.parametrize("lifetime", [0, -1, MAX_LIFETIME_S + 1, 10_000])
def test_sign_request_refuses_a_lifetime_out_of_range(lifetime: int) -> None:
    with pytest.raises(ValueError, match="lifetime_s"):
        sign_request(KEY, chain_id=1, audience=AUD, method="GET", path="/",
                     lifetime_s=lifetime)


def test_sign_request_accepts_bytes_keys() -> None:
    h = signed(key=KEY)
    raw = sign_request(bytes.fromhex(KEY[2:]), chain_id=CHAIN_ID, audience=AUD, method="POST",
                       path="/v1/records", body=b"{}", now=NOW)
    assert raw.account == ADDRESS
    assert verify(raw.as_dict())[0] == verify(h)[0] == ADDRESS


# -- roundtrip -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(method=st.sampled_from(METHODS), path=paths, body=bodies,
       chain_id=st.integers(1, 2**63), lifetime=st.integers(1, MAX_LIFETIME_S),
       # NOW + elapsed must stay below NOW + 1 in float64 (its step near 1.7e9 is 2.4e-7).
       elapsed=st.floats(0, 0.999))
def test_sign_then_recover_roundtrip(method: str, path: str, body: bytes, chain_id: int,
                                     lifetime: int, elapsed: float) -> None:
    h = sign_request(KEY, chain_id=chain_id, audience=AUD, method=method, path=path,
                     body=body, lifetime_s=lifetime, now=NOW)
    out = recover_signer(h.as_dict(), chain_id=chain_id, method=method, path=path, body=body,
                         now=NOW + elapsed)
    assert out == SignedBy(ADDRESS, AUD, h.nonce, int(NOW) + lifetime)


def test_method_case_does_not_matter() -> None:
    h = signed(method="post")
    assert verify(h, method="POST")[0] == ADDRESS


def test_a_lowercase_account_header_verifies_and_returns_the_checksum_address() -> None:
    h = signed()
    h[ACCOUNT_HEADER] = h[ACCOUNT_HEADER].lower()
    assert verify(h)[0] == ADDRESS


# -- every signed field is bound ------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(method=st.sampled_from(METHODS), path=paths, body=bodies, data=st.data())
def test_any_change_breaks_the_signature(method: str, path: str, body: bytes,
                                         data: st.DataObject) -> None:
    h = signed(method, path, body)
    ok: dict[str, Any] = {"method": method, "path": path, "body": body, "chain_id": CHAIN_ID}
    assert verify(h, **ok)[0] == ADDRESS
    change = data.draw(st.sampled_from(
        ["chain_id", "audience", "method", "path", "body", "expires", "nonce", "account"]))
    call = dict(ok)
    headers = dict(h)
    if change == "chain_id":
        call["chain_id"] = data.draw(st.integers(1, 2**63).filter(lambda c: c != CHAIN_ID))
    elif change == "audience":  # the same request sent to another node
        headers[AUDIENCE_HEADER] = data.draw(st.sampled_from(
            ["914403001922038216", "node:node-2", AUD.lower()]))
    elif change == "method":
        call["method"] = data.draw(st.sampled_from([m for m in METHODS if m != method]))
    elif change == "path":
        call["path"] = data.draw(paths.filter(lambda p: p != path))
    elif change == "body":
        call["body"] = data.draw(bodies.filter(lambda b: b != body))
    elif change == "expires":
        # still inside the accepted window, so only the signature can object
        delta = data.draw(st.integers(-59, 240).filter(lambda d: d != 0))
        headers[EXPIRES_HEADER] = str(int(h[EXPIRES_HEADER]) + delta)
    elif change == "nonce":
        nonce = data.draw(st.binary(min_size=16, max_size=16).map(bytes.hex)
                          .filter(lambda n: n != h[NONCE_HEADER]))
        headers[NONCE_HEADER] = nonce
    else:
        headers[ACCOUNT_HEADER] = OTHER_ADDRESS
    err = refusal(headers, **call)
    assert err.reason == "bad_signature", (change, err)


def test_signature_by_another_key_for_the_claimed_account_is_refused() -> None:
    mine = signed()
    theirs = signed(key=OTHER_KEY)
    forged = {**mine, SIGNATURE_HEADER: theirs[SIGNATURE_HEADER]}
    err = refusal(forged)
    assert err.reason == "bad_signature"
    assert ADDRESS in str(err)


@pytest.mark.parametrize("index", [0, 31, 64])
def test_flipped_signature_bits_are_refused(index: int) -> None:
    h = signed()
    sig = bytearray(bytes.fromhex(h[SIGNATURE_HEADER][2:]))
    sig[index] ^= 0x01
    err = refusal({**h, SIGNATURE_HEADER: "0x" + sig.hex()})
    assert err.reason == "bad_signature"


@pytest.mark.parametrize("sig", [
    "0x" + "00" * 65,  # r = s = 0, v = 0
    "0x" + "ff" * 65,  # r, s above the curve order, v = 255
    "0x" + "11" * 64 + "05",  # v out of range
])
def test_unrecoverable_signatures_are_bad_signature(sig: str) -> None:
    err = refusal({**signed(), SIGNATURE_HEADER: sig})
    assert err.reason == "bad_signature"


# -- expiry window ---------------------------------------------------------------------------


def test_expired_request_is_refused() -> None:
    h = signed(lifetime_s=60)
    expires = int(h[EXPIRES_HEADER])
    assert verify(h, now=expires - 0.5)[2] == expires
    for later in (expires, expires + 1, expires + 3600):
        err = refusal(h, now=later)
        assert err.reason == "expired"


def test_expiry_too_far_ahead_is_refused() -> None:
    h = signed(lifetime_s=MAX_LIFETIME_S)
    expires = int(h[EXPIRES_HEADER])
    # the full lifetime plus 5 s of clock skew is accepted
    assert verify(h, now=expires - MAX_LIFETIME_S - 5)[0] == ADDRESS
    err = refusal(h, now=expires - MAX_LIFETIME_S - 6)
    assert err.reason == "bad_auth"
    assert str(MAX_LIFETIME_S) in str(err)


def test_a_request_signed_by_a_fast_clock_is_refused() -> None:
    h = signed(now=NOW + 3600)
    assert refusal(h, now=NOW).reason == "bad_auth"


# -- malformed headers -------------------------------------------------------------------------


@pytest.mark.parametrize("missing", HEADERS)
def test_each_missing_header_is_unauthenticated(missing: str) -> None:
    h = signed()
    del h[missing]
    err = refusal(h)
    assert err.reason == "unauthenticated"
    assert all(name in str(err) for name in HEADERS)  # the message says what to send


@pytest.mark.parametrize("empty", HEADERS)
def test_each_empty_header_is_unauthenticated(empty: str) -> None:
    h = {**signed(), empty: ""}
    assert refusal(h).reason == "unauthenticated"


def test_no_headers_at_all_is_unauthenticated() -> None:
    assert refusal({}).reason == "unauthenticated"


GARBLED = [
    (ACCOUNT_HEADER, "0x1234"),
    (ACCOUNT_HEADER, ADDRESS[2:]),  # no 0x
    (ACCOUNT_HEADER, "0x" + "g" * 40),
    (ACCOUNT_HEADER, ADDRESS + "00"),
    (ACCOUNT_HEADER, "alice"),
    (NONCE_HEADER, "ab" * 15),  # 30 digits
    (NONCE_HEADER, "ab" * 17),  # 34 digits
    (NONCE_HEADER, "AB" * 16),  # upper case
    (NONCE_HEADER, "0x" + "ab" * 15),
    (NONCE_HEADER, "zz" * 16),
    (EXPIRES_HEADER, "soon"),
    (EXPIRES_HEADER, "-60"),
    (EXPIRES_HEADER, "1.7e9"),
    (EXPIRES_HEADER, "1700000060.5"),
    (EXPIRES_HEADER, " 1700000060"),
    (EXPIRES_HEADER, "1" * 13),  # more than 12 digits
    (SIGNATURE_HEADER, "0x" + "ab" * 64),  # 64 bytes
    (SIGNATURE_HEADER, "0x" + "ab" * 66),
    (SIGNATURE_HEADER, "ab" * 65),  # no 0x
    (SIGNATURE_HEADER, "0x" + "zz" * 65),
    (AUDIENCE_HEADER, "a b"),
    (AUDIENCE_HEADER, "x" * 65),
    (AUDIENCE_HEADER, AUD + "\n"),
    (AUDIENCE_HEADER, "节点"),
]


@pytest.mark.parametrize(("header", "value"), GARBLED,
                         ids=[f"{h}={v[:12]}" for h, v in GARBLED])
def test_garbled_headers_are_bad_auth(header: str, value: str) -> None:
    h = {**signed(), header: value}
    err = refusal(h)
    assert err.reason == "bad_auth", err
    assert header in str(err)  # the message names the header


@pytest.mark.parametrize("value", ["²", "1700000060²", "¹²³"])
def test_non_ascii_digit_expiry_is_bad_auth(value: str) -> None:
    h = {**signed(), EXPIRES_HEADER: value}
    err = refusal(h)
    assert err.reason == "bad_auth"


def test_account_with_trailing_newline_is_bad_auth() -> None:
    h = signed()
    h[ACCOUNT_HEADER] += "\n"
    err = refusal(h)
    assert err.reason == "bad_auth"


def test_request_auth_error_is_a_value_error_with_reason() -> None:
    err = RequestAuthError("expired", "the message")
    assert err.reason == "expired" and str(err) == "the message"
    assert isinstance(err, ValueError)


def test_real_clock_is_used_by_default() -> None:
    h = sign_request(KEY, chain_id=CHAIN_ID, audience=AUD, method="GET", path="/v1/x")
    assert abs(h.expires - (time.time() + 60)) < 5
    out = recover_signer(h.as_dict(), chain_id=CHAIN_ID, method="GET", path="/v1/x", body=b"")
    assert out.account == ADDRESS


def test_the_audience_is_checked_exactly() -> None:
    check_audience(AUD, AUD)
    for other in ("914403001922038216", AUD.lower(), AUD + " ", "node:" + AUD):
        with pytest.raises(RequestAuthError) as err:
            check_audience(other, AUD)
        assert err.value.reason == "wrong_audience"
        assert AUD in str(err.value) and "/healthz" in str(err.value)


@pytest.mark.parametrize("audience", ["", "a b", "x" * 65, "节点", "a\n"])
def test_a_malformed_audience_is_refused_when_signing(audience: str) -> None:
    with pytest.raises(ValueError, match="audience"):
        sign_request(KEY, chain_id=CHAIN_ID, audience=audience, method="GET", path="/")
