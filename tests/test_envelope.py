"""Record envelopes (yilian.protocol.envelope) and the tests' gmssl SM2 reference
(tests/gmssl_reference.py), cross-checked against yilian.crypto.sm2 (OpenSSL).

Vector sources:

* AES-256-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", Test Case 16
  (256-bit key, 96-bit IV, 20-byte AAD, 60-byte plaintext).
* SM4-GCM: RFC 8998 Appendix A.1.
* SM2 encryption on the recommended curve: GB/T 32918.5-2017 (= GM/T 0003.5-2012) Annex C
  ("encryption standard", k = 59276E27...) with the Annex A key, and the Decrypt vector of
  OpenSSL's test/recipes/30-test_evp_data/evppkey_sm2.txt (SM2_key1), from
  tests/sm_vectors.py, shared with tests/test_crypto_sm.py.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping

import msgpack
import pytest
from gmssl import func as gm_func
from gmssl import sm2 as gm_sm2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import gmssl_reference as gm_ref
from tests.sm_vectors import (
    ANNEX_C_CT,
    ANNEX_C_PT,
    ANNEX_D,
    ANNEX_K,
    ANNEX_PUB,
    OSSL_CT,
    OSSL_D,
    OSSL_PT,
    OSSL_PUB,
    RFC8998_AAD,
    RFC8998_CT,
    RFC8998_IV,
    RFC8998_KEY,
    RFC8998_PT,
    RFC8998_TAG,
)
from yilian.crypto import sm2 as node_sm2
from yilian.protocol import envelope as env
from yilian.protocol.envelope import EnvelopeError, TamperedError, UnwrapError

H = bytes.fromhex
SUITES = ("standard", "sm")
BACKENDS = {"openssl": node_sm2, "gmssl": gm_ref}


def _aad(version: int = 1, record_id: bytes = b"\x11" * 32, chain_id: int = 7) -> bytes:
    return env.record_aad(
        chain_id, b"\x22" * 20, record_id, version, 3, b"\x33" * 32, b"\x44" * 32, 2
    )


# ------------------------------------------------------------------------------ digests


def test_digest() -> None:
    assert env.digest("standard", b"abc") == hashlib.sha256(b"abc").digest()
    assert env.digest("sm", b"abc") == H(
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )  # GB/T 32905-2016 Appendix A, example 1
    with pytest.raises(EnvelopeError, match="unknown crypto suite"):
        env.digest("aes", b"abc")


def test_sizes() -> None:
    assert env.data_key_size("standard") == 32 and env.data_key_size("sm") == 16
    assert env.enc_public_key_size("standard") == 32 and env.enc_public_key_size("sm") == 64
    assert env.wrapped_key_size("standard") == 80 and env.wrapped_key_size("sm") == 113
    with pytest.raises(EnvelopeError):
        env.data_key_size("SM")


# ---------------------------------------------------------------------- AEAD vectors

GCM16_KEY = H("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
GCM16_IV = H("cafebabefacedbaddecaf888")
GCM16_AAD = H("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM16_PT = H(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
)
GCM16_CT = H(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
)
GCM16_TAG = H("76fc6ece0f4e1768cddf8853bb2d551b")


AEAD_VECTORS = {
    "standard": (GCM16_KEY, GCM16_IV, GCM16_AAD, GCM16_PT, GCM16_CT + GCM16_TAG),
    "sm": (RFC8998_KEY, RFC8998_IV, RFC8998_AAD, RFC8998_PT, RFC8998_CT + RFC8998_TAG),
}


@pytest.mark.parametrize("suite", SUITES)
def test_aead_published_vector(suite: str) -> None:
    key, iv, aad, pt, out = AEAD_VECTORS[suite]
    assert env._aead_encrypt(suite, key, iv, pt, aad) == out
    assert env._aead_decrypt(suite, key, iv, out, aad) == pt
    bad = bytearray(out)
    bad[-1] ^= 1
    with pytest.raises(TamperedError):
        env._aead_decrypt(suite, key, iv, bytes(bad), aad)
    with pytest.raises(TamperedError):
        env._aead_decrypt(suite, key, iv, out, aad + b"\x00")


# ------------------------------------------------------------------------ seal / open


@pytest.mark.parametrize("suite", SUITES)
@settings(max_examples=40, deadline=None)
@given(pt=st.binary(max_size=600), aad=st.binary(max_size=300))
def test_seal_round_trip(suite: str, pt: bytes, aad: bytes) -> None:
    s = env.seal(suite, pt, aad)
    assert len(s.data_key) == env.data_key_size(suite)
    assert len(s.ciphertext) == len(pt) + env.SEALED_OVERHEAD
    assert s.ciphertext[0] == env.FORMAT_VERSION
    assert env.open_sealed(suite, s.data_key, s.ciphertext, aad) == pt


@pytest.mark.parametrize("suite", SUITES)
def test_seal_is_fresh_every_time(suite: str) -> None:
    a = env.seal(suite, b"same record", _aad())
    b = env.seal(suite, b"same record", _aad())
    assert a.data_key != b.data_key
    assert a.ciphertext[1:13] != b.ciphertext[1:13]  # nonce
    assert a.ciphertext != b.ciphertext
    assert "data_key" not in repr(a) and a.data_key.hex() not in repr(a)


@pytest.mark.parametrize("suite", SUITES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_flipped_bit_is_detected(suite: str, data: st.DataObject) -> None:
    pt = b"tender 2024-0042: winning bid 1,234,567.00 CNY"
    s = env.seal(suite, pt, _aad())
    pos = data.draw(st.integers(0, len(s.ciphertext) - 1), label="position")
    bit = data.draw(st.integers(0, 7), label="bit")
    bad = bytearray(s.ciphertext)
    bad[pos] ^= 1 << bit
    with pytest.raises(TamperedError):
        env.open_sealed(suite, s.data_key, bytes(bad), _aad())


@pytest.mark.parametrize("suite", SUITES)
def test_binding_to_record_and_version(suite: str) -> None:
    s = env.seal(suite, b"payload", _aad(version=1))
    assert env.open_sealed(suite, s.data_key, s.ciphertext, _aad(version=1)) == b"payload"
    for other in (_aad(version=2), _aad(record_id=b"\x12" * 32), _aad(chain_id=8), b""):
        with pytest.raises(TamperedError, match="record id, version"):
            env.open_sealed(suite, s.data_key, s.ciphertext, other)


@pytest.mark.parametrize("suite", SUITES)
def test_truncated_and_malformed(suite: str) -> None:
    s = env.seal(suite, b"0123456789", _aad())
    for n in range(len(s.ciphertext)):
        with pytest.raises(TamperedError):
            env.open_sealed(suite, s.data_key, s.ciphertext[:n], _aad())
    with pytest.raises(TamperedError):
        env.open_sealed(suite, s.data_key, s.ciphertext + b"\x00", _aad())
    with pytest.raises(TamperedError, match="format version 2"):
        env.open_sealed(suite, s.data_key, b"\x02" + s.ciphertext[1:], _aad())


@pytest.mark.parametrize("suite", SUITES)
def test_wrong_data_key(suite: str) -> None:
    s = env.seal(suite, b"x", b"")
    other = os.urandom(env.data_key_size(suite))
    with pytest.raises(TamperedError):
        env.open_sealed(suite, other, s.ciphertext, b"")
    with pytest.raises(EnvelopeError, match=f"must be {env.data_key_size(suite)} bytes") as ei:
        env.open_sealed(suite, s.data_key[:-1], s.ciphertext, b"")
    assert not isinstance(ei.value, TamperedError)


def test_seal_rejects_non_bytes() -> None:
    with pytest.raises(EnvelopeError, match="plaintext must be bytes"):
        env.seal("standard", "text", b"")  # type: ignore[arg-type]
    with pytest.raises(EnvelopeError, match="unknown crypto suite"):
        env.seal("gm", b"x", b"")


# ---------------------------------------------------------------------------- record_aad


def test_record_aad_layout() -> None:
    aad = env.record_aad(2**64, b"\xaa" * 20, b"\xbb" * 32, 5, 6, b"\xcc" * 32, b"\xdd" * 32, 9)
    assert len(aad) == env.RECORD_AAD_SIZE == 260
    assert aad == (
        b"yilian-record-v1"
        + (2**64).to_bytes(32, "big")
        + b"\xaa" * 20
        + b"\xbb" * 32
        + (5).to_bytes(32, "big")
        + (6).to_bytes(32, "big")
        + b"\xcc" * 32
        + b"\xdd" * 32
        + (9).to_bytes(32, "big")
    )


words = st.integers(0, 2**256 - 1)
# record_aad's arguments: chain id, Records address, record id, version, type, subject,
# owner, schema
aad_args = st.tuples(
    words,
    st.binary(min_size=20, max_size=20),
    st.binary(min_size=32, max_size=32),
    words,
    words,
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    words,
)


@settings(max_examples=100, deadline=None)
@given(aad_args, aad_args)
def test_record_aad_is_injective(a: tuple, b: tuple) -> None:
    assert (env.record_aad(*a) == env.record_aad(*b)) == (a == b)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (0, -1, r"chain_id must be in \[0, 2\*\*256\)"),
        (0, 2**256, r"chain_id must be in"),
        (0, True, "chain_id must be an int"),
        (1, b"\x00" * 32, "records_address must be 20 bytes, got 32"),
        (2, b"\x00" * 31, "record_id must be 32 bytes, got 31"),
        (2, "00" * 32, "record_id must be bytes, not str"),
        (3, 1.0, "version must be an int"),
        (4, -5, "rtype must be in"),
        (5, b"", "subject must be 32 bytes"),
        (6, None, "owner must be bytes"),
        (7, "1", "schema must be an int"),
    ],
)
def test_record_aad_rejects(field: int, value: object, message: str) -> None:
    args: list[object] = [1, b"\x00" * 20, b"\x00" * 32, 1, 1, b"\x00" * 32, b"\x00" * 32, 1]
    args[field] = value
    with pytest.raises(EnvelopeError, match=message):
        env.record_aad(*args)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ keys, key wrap


@pytest.mark.parametrize("backend", BACKENDS)
def test_sm_keypair(backend: str) -> None:
    kp = env.generate_enc_keypair("sm", sm2=BACKENDS[backend])
    assert len(kp.private) == 32 and len(kp.public) == 64
    assert env.check_enc_public_key("sm", kp.public) == kp.public
    for b in BACKENDS.values():
        assert env.enc_public_key("sm", kp.private, sm2=b) == kp.public
    assert kp.private.hex() not in repr(kp)


def test_standard_keypair() -> None:
    kp = env.generate_enc_keypair("standard")
    assert len(kp.private) == 32 and len(kp.public) == 32
    assert env.enc_public_key("standard", kp.private) == kp.public
    assert env.check_enc_public_key("standard", bytearray(kp.public)) == kp.public  # type: ignore[arg-type]
    assert env.generate_enc_keypair("standard").private != kp.private


def test_check_enc_public_key_messages() -> None:
    with pytest.raises(EnvelopeError, match="must be 32 bytes, got 64"):
        env.check_enc_public_key("standard", bytes(64))
    with pytest.raises(EnvelopeError, match=r"must be 64 bytes x \|\| y, got 65 \(drop the"):
        env.check_enc_public_key(
            "sm", b"\x04" + node_sm2.public_key(node_sm2.generate_private_key())
        )
    with pytest.raises(EnvelopeError, match=r"must be 64 bytes x \|\| y, got 32$"):
        env.check_enc_public_key("sm", bytes(32))
    with pytest.raises(EnvelopeError, match="not a point on the SM2 curve"):
        env.check_enc_public_key("sm", bytes(64))
    with pytest.raises(EnvelopeError, match="must be 64 bytes, not str"):
        env.check_enc_public_key("sm", "00" * 64)  # type: ignore[arg-type]


def test_enc_public_key_rejects_bad_private() -> None:
    with pytest.raises(EnvelopeError, match="must be 32 bytes"):
        env.enc_public_key("standard", bytes(31))
    for b in BACKENDS.values():
        with pytest.raises(EnvelopeError, match=r"invalid sm \(SM2\) encryption private key"):
            env.enc_public_key("sm", bytes(32), sm2=b)


def test_wrap_unwrap_standard() -> None:
    kp = env.generate_enc_keypair("standard")
    key = os.urandom(32)
    w = env.wrap_key("standard", kp.public, key)
    assert len(w) == 80
    assert env.wrap_key("standard", kp.public, key) != w  # ephemeral key per wrap
    assert env.unwrap_key("standard", kp.private, w) == key
    other = env.generate_enc_keypair("standard")
    with pytest.raises(UnwrapError, match="wrapped for another key"):
        env.unwrap_key("standard", other.private, w)
    for i in (0, 40, 79):
        bad = bytearray(w)
        bad[i] ^= 1
        with pytest.raises(UnwrapError):
            env.unwrap_key("standard", kp.private, bytes(bad))
    with pytest.raises(UnwrapError, match="must be 80 bytes, got 79"):
        env.unwrap_key("standard", kp.private, w[:-1])
    with pytest.raises(EnvelopeError, match="data key must be 32 bytes"):
        env.wrap_key("standard", kp.public, bytes(16))
    with pytest.raises(EnvelopeError, match="cannot wrap"):
        env.wrap_key("standard", bytes(32), key)  # all-zero (low-order) X25519 point


@pytest.mark.parametrize("wrapper", BACKENDS)
@pytest.mark.parametrize("unwrapper", BACKENDS)
def test_wrap_unwrap_sm_across_backends(wrapper: str, unwrapper: str) -> None:
    kp = env.generate_enc_keypair("sm", sm2=node_sm2)
    key = os.urandom(16)
    w = env.wrap_key("sm", kp.public, key, sm2=BACKENDS[wrapper])
    assert len(w) == 113 and w[0] == 4
    assert env.unwrap_key("sm", kp.private, w, sm2=BACKENDS[unwrapper]) == key
    other = env.generate_enc_keypair("sm", sm2=node_sm2)
    with pytest.raises(UnwrapError, match="wrapped for another key"):
        env.unwrap_key("sm", other.private, w, sm2=BACKENDS[unwrapper])
    for i in (1, 40, 70, 112):  # C1.x, C1.y, C3, C2
        bad = bytearray(w)
        bad[i] ^= 1
        with pytest.raises(UnwrapError):
            env.unwrap_key("sm", kp.private, bytes(bad), sm2=BACKENDS[unwrapper])
    with pytest.raises(UnwrapError, match="must be 113 bytes, got 112"):
        env.unwrap_key("sm", kp.private, w[:-1], sm2=BACKENDS[unwrapper])


def test_wrap_sm_rejects_bad_input() -> None:
    kp = env.generate_enc_keypair("sm", sm2=node_sm2)
    with pytest.raises(EnvelopeError, match="data key must be 16 bytes"):
        env.wrap_key("sm", kp.public, bytes(32), sm2=node_sm2)
    with pytest.raises(EnvelopeError, match="not a point"):
        env.wrap_key("sm", kp.public[:-1] + bytes([kp.public[-1] ^ 1]), bytes(16), sm2=gm_ref)
    with pytest.raises(EnvelopeError, match="private key must be 32 bytes"):
        env.unwrap_key("sm", kp.private[:31], bytes(113), sm2=node_sm2)


def test_wrapped_key_length_checked_from_backend() -> None:
    class Short:
        def encrypt(self, public: bytes, plaintext: bytes, /) -> bytes:
            return b"\x04" + bytes(50)

        def decrypt(self, private: bytes, ciphertext: bytes, /) -> bytes:
            return bytes(15)

        def public_key(self, private: bytes, /) -> bytes:
            return node_sm2.public_key(private)

        def generate_private_key(self) -> bytes:
            return node_sm2.generate_private_key()

    kp = env.generate_enc_keypair("sm", sm2=node_sm2)
    with pytest.raises(EnvelopeError, match="produced 51 bytes, expected 113"):
        env.wrap_key("sm", kp.public, bytes(16), sm2=Short())
    with pytest.raises(UnwrapError, match="is 15 bytes, expected 16"):
        env.unwrap_key("sm", kp.private, bytes(113), sm2=Short())


@pytest.mark.parametrize("suite", SUITES)
def test_rewrap(suite: str) -> None:
    b = node_sm2 if suite == "sm" else None
    custodian = env.generate_enc_keypair(suite, sm2=b)
    grantee = env.generate_enc_keypair(suite, sm2=b)
    s = env.seal(suite, b"bid documents", _aad())
    w = env.wrap_key(suite, custodian.public, s.data_key, sm2=b)
    w2 = env.rewrap(suite, custodian.private, w, grantee.public, sm2=b)
    assert w2 != w
    key = env.unwrap_key(suite, grantee.private, w2, sm2=b)
    assert env.open_sealed(suite, key, s.ciphertext, _aad()) == b"bid documents"
    with pytest.raises(UnwrapError):
        env.rewrap(suite, grantee.private, w, grantee.public, sm2=b)
    with pytest.raises(EnvelopeError):
        env.rewrap(suite, custodian.private, w, bytes(7), sm2=b)


def test_default_backend_is_openssl() -> None:
    """Without ``sm2=`` the envelope uses yilian.crypto.sm2; an explicit backend is used instead."""
    kp = env.generate_enc_keypair("sm")
    assert node_sm2.public_key(kp.private) == kp.public
    w = env.wrap_key("sm", kp.public, bytes(range(16)))
    assert node_sm2.decrypt(kp.private, w) == bytes(range(16))
    assert env.unwrap_key("sm", kp.private, w) == bytes(range(16))
    assert env.unwrap_key("sm", kp.private, w, sm2=gm_ref) == bytes(range(16))
    kp = env.generate_enc_keypair("standard")  # standard uses no SM2
    assert env.unwrap_key("standard", kp.private, env.wrap_key("standard", kp.public, bytes(32)))


# --------------------------------------------------------------------------- bundle codec

member_ids = st.binary(min_size=32, max_size=32)
bundles = st.dictionaries(member_ids, st.binary(min_size=1, max_size=120), max_size=6)


@settings(max_examples=200, deadline=None)
@given(bundles)
def test_bundle_round_trip(m: dict[bytes, bytes]) -> None:
    data = env.encode_wrapped_keys(m)
    assert len(data) <= env.MAX_BUNDLE_SIZE
    assert env.decode_wrapped_keys(data) == m
    assert list(env.decode_wrapped_keys(data)) == sorted(m)
    # insertion order does not matter: one encoding per bundle
    assert env.encode_wrapped_keys(dict(reversed(list(m.items())))) == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_bundle_decoder_accepts_only_canonical(data: bytes) -> None:
    try:
        m = env.decode_wrapped_keys(data)
    except EnvelopeError:
        return
    assert env.encode_wrapped_keys(m) == data


@settings(max_examples=100, deadline=None)
@given(bundles.filter(bool), st.data())
def test_bundle_mutations_rejected_or_canonical(m: dict[bytes, bytes], data: st.DataObject) -> None:
    enc = bytearray(env.encode_wrapped_keys(m))
    pos = data.draw(st.integers(0, len(enc) - 1))
    enc[pos] ^= data.draw(st.integers(1, 255))
    try:
        out = env.decode_wrapped_keys(bytes(enc))
    except EnvelopeError:
        return
    assert env.encode_wrapped_keys(out) == bytes(enc)


def test_two_recipients_fit() -> None:
    for suite in SUITES:
        size = env.wrapped_key_size(suite)
        m = {b"\x01" * 32: bytes(size), b"\x02" * 32: bytes(size)}
        assert len(env.encode_wrapped_keys(m)) < env.MAX_BUNDLE_SIZE // 3


def _bin8(b: bytes) -> bytes:
    return b"\xc4" + bytes([len(b)]) + b


A_ID, B_ID = b"\x01" * 32, b"\x02" * 32
GOOD = b"\x82" + _bin8(A_ID) + _bin8(b"wa") + _bin8(B_ID) + _bin8(b"wb")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a msgpack map"),
        (b"\x92" + _bin8(A_ID) + _bin8(b"w"), "not a msgpack map"),  # array
        (b"\xc4\x01x", "not a msgpack map"),  # bin
        (GOOD + b"\x00", "not valid msgpack"),  # trailing byte
        (GOOD[:-1], "not valid msgpack"),  # truncated
        (b"\x82" + _bin8(B_ID) + _bin8(b"wb") + _bin8(A_ID) + _bin8(b"wa"), "out of order"),
        (b"\x82" + _bin8(A_ID) + _bin8(b"wa") + _bin8(A_ID) + _bin8(b"wb"), "duplicated"),
        (b"\x81" + _bin8(A_ID[:31]) + _bin8(b"w"), "member id must be bin 32"),
        (b"\x81\xd9\x20" + b"a" * 32 + _bin8(b"w"), "member id must be bin 32"),  # str key
        (b"\x81\x01" + _bin8(b"w"), "not valid msgpack"),  # int key (strict_map_key)
        (b"\x81" + _bin8(A_ID) + b"\xa1w", "must be non-empty bin"),  # str value
        (b"\x81" + _bin8(A_ID) + _bin8(b""), "must be non-empty bin"),
        (b"\x81" + _bin8(A_ID) + b"\x91\x01", "must be non-empty bin"),  # array value
        (b"\x81" + _bin8(A_ID) + b"\xd4\x01\x00", "not valid msgpack"),  # ext value
        (b"\xde\x00\x01" + _bin8(A_ID) + _bin8(b"w"), "not canonically encoded"),  # map16
        (b"\x81" + b"\xc5\x00\x20" + A_ID + _bin8(b"w"), "not canonically encoded"),  # bin16
        (b"\x81" + _bin8(A_ID) + b"\xc6\x00\x00\x00\x01w", "not canonically encoded"),  # bin32
        (b"\x80" + b"\x00" * 1024, "over the 1024-byte limit"),
    ],
)
def test_bundle_malformed(data: bytes, message: str) -> None:
    assert env.decode_wrapped_keys(GOOD) == {A_ID: b"wa", B_ID: b"wb"}
    with pytest.raises(EnvelopeError, match=message):
        env.decode_wrapped_keys(data)


class _Dup(Mapping[bytes, bytes]):
    """A (broken) mapping that yields the same member id twice."""

    def __getitem__(self, key: bytes) -> bytes:
        return b"w"

    def __iter__(self) -> Iterator[bytes]:
        return iter([A_ID, bytes(A_ID)])

    def __len__(self) -> int:
        return 2


def test_bundle_encoder_rejects() -> None:
    with pytest.raises(EnvelopeError, match="member id must be 32 bytes, got 31"):
        env.encode_wrapped_keys({A_ID[:31]: b"w"})
    with pytest.raises(EnvelopeError, match="member id must be bytes, not str"):
        env.encode_wrapped_keys({"a" * 32: b"w"})  # type: ignore[dict-item]
    with pytest.raises(EnvelopeError, match="is empty"):
        env.encode_wrapped_keys({A_ID: b""})
    with pytest.raises(EnvelopeError, match="must be bytes, not str"):
        env.encode_wrapped_keys({A_ID: "w"})  # type: ignore[dict-item]
    with pytest.raises(EnvelopeError, match="appears twice"):
        env.encode_wrapped_keys(_Dup())
    with pytest.raises(EnvelopeError, match="over the 1024-byte limit: wrap for fewer"):
        env.encode_wrapped_keys({bytes([i]) * 32: bytes(113) for i in range(7)})
    with pytest.raises(EnvelopeError, match="must be a mapping"):
        env.encode_wrapped_keys([(A_ID, b"w")])  # type: ignore[arg-type]
    assert env.encode_wrapped_keys({}) == msgpack.packb({})
    assert env.decode_wrapped_keys(b"\x80") == {}


# ------------------------------------------------------- tests/gmssl_reference.py (gmssl)



def test_sdk_annex_a_public_key() -> None:
    assert gm_ref.public_key(ANNEX_D) == ANNEX_PUB
    assert gm_ref.public_key(OSSL_D) == OSSL_PUB


def test_sdk_annex_c_reproduced_with_fixed_k() -> None:
    assert gm_ref._encrypt_with_k(ANNEX_PUB, ANNEX_C_PT, ANNEX_K) == ANNEX_C_CT


def test_sdk_decrypts_published_ciphertexts() -> None:
    assert gm_ref.decrypt(ANNEX_D, ANNEX_C_CT) == ANNEX_C_PT
    assert gm_ref.decrypt(OSSL_D, OSSL_CT) == OSSL_PT
    # same vector as the node sees it
    assert gm_ref.decrypt(
        OSSL_D, node_sm2.ciphertext_from_der(node_sm2.ciphertext_to_der(OSSL_CT))
    )


def test_sdk_does_not_use_gmssl_random(monkeypatch: pytest.MonkeyPatch) -> None:
    """gmssl draws k with random.choice; ours must not depend on it."""
    monkeypatch.setattr(gm_func, "random_hex", lambda n: "1" * n)
    a = gm_ref.encrypt(ANNEX_PUB, b"k" * 16)
    b = gm_ref.encrypt(ANNEX_PUB, b"k" * 16)
    assert a[:65] != b[:65]


def test_sdk_public_key_with_leading_zero_and_four() -> None:
    """Keys whose hex starts with 0/4 (which gmssl's constructor would strip) work."""
    found = 0
    while found < 2:
        d = node_sm2.generate_private_key()
        pub = node_sm2.public_key(d)
        if pub.hex()[0] not in "04":
            continue
        found += 1
        assert gm_ref.public_key(d) == pub
        assert node_sm2.decrypt(d, gm_ref.encrypt(pub, b"abc")) == b"abc"


def test_sdk_decrypt_rejects_tampering() -> None:
    d = gm_ref.generate_private_key()
    ct = gm_ref.encrypt(gm_ref.public_key(d), b"secret key material")
    for i in (1, 40, 70, len(ct) - 1):  # C1.x, C1.y, C3, C2
        bad = bytearray(ct)
        bad[i] ^= 1
        with pytest.raises(gm_ref.Sm2Error):
            gm_ref.decrypt(d, bytes(bad))
    # gmssl's own decrypt returns garbage for an altered C2 (it never checks C3):
    gm = gm_sm2.CryptSM2(private_key=d.hex(), public_key="", mode=1)
    bad = bytearray(ct)
    bad[-1] ^= 1
    assert gm.decrypt(bytes(bad[1:])) != b"secret key material"
    with pytest.raises(gm_ref.Sm2Error, match="C3 check failed"):
        gm_ref.decrypt(gm_ref.generate_private_key(), ct)
    with pytest.raises(gm_ref.Sm2Error, match="non-empty C2"):
        gm_ref.decrypt(d, ct[:97])
    with pytest.raises(gm_ref.Sm2Error, match="non-empty C2"):
        gm_ref.decrypt(d, ct[1:])  # gmssl's layout without 04
    with pytest.raises(gm_ref.Sm2Error, match="C1 is not a point"):
        gm_ref.decrypt(d, b"\x04" + bytes(100))


def test_sdk_rejects_bad_keys_and_input() -> None:
    d = gm_ref.generate_private_key()
    pub = gm_ref.public_key(d)
    for bad in (bytes(32), (gm_ref.N - 1).to_bytes(32, "big"), b"\x01"):
        assert not gm_ref.is_valid_private_key(bad)
        with pytest.raises(gm_ref.Sm2Error, match="1 <= d <= n-2"):
            gm_ref.public_key(bad)
    with pytest.raises(gm_ref.Sm2Error, match="must be bytes"):
        gm_ref.public_key(d.hex())  # type: ignore[arg-type]
    with pytest.raises(gm_ref.Sm2Error, match="64 bytes"):
        gm_ref.encrypt(b"\x04" + pub, b"x")
    with pytest.raises(gm_ref.Sm2Error, match="not a point"):
        gm_ref.encrypt(pub[:63] + bytes([pub[63] ^ 1]), b"x")
    with pytest.raises(gm_ref.Sm2Error, match="empty plaintext"):
        gm_ref.encrypt(pub, b"")
    assert gm_ref.decrypt(bytearray(d), memoryview(gm_ref.encrypt(bytearray(pub), b"x"))) == b"x"


sm2_keys = st.integers(min_value=1, max_value=node_sm2.N - 2).map(lambda d: d.to_bytes(32, "big"))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sm2_keys, st.binary(min_size=1, max_size=100))
def test_sdk_interoperates_with_openssl(d: bytes, msg: bytes) -> None:
    pub = node_sm2.public_key(d)
    assert gm_ref.public_key(d) == pub
    ct = gm_ref.encrypt(pub, msg)
    assert len(ct) == 97 + len(msg) and ct[0] == 4
    assert node_sm2.decrypt(d, ct) == msg
    assert gm_ref.decrypt(d, node_sm2.encrypt(pub, msg)) == msg
