"""Record envelopes: per-record AEAD, key wrapping for recipients, and the wrapped-key bundle.

Shared by the node and the SDK, so it imports neither ``yilian.node`` nor ``yilian.sdk``.
Every function takes the network's crypto suite by name (fixed at genesis):

========== ================= ================ ======================== =================
suite      ``digest``        record AEAD      key wrap                 enc. public key
========== ================= ================ ======================== =================
standard   SHA-256           AES-256-GCM      X25519 sealed box        32 bytes
                             (32-byte key)    (libsodium, PyNaCl)
sm         SM3               SM4-GCM          SM2 encryption, C1C3C2   64 bytes ``x||y``
                             (16-byte key)    (GB/T 32918.4)
========== ================= ================ ======================== =================

Formats (all fixed; decoders reject anything else):

* sealed record (:func:`seal`, :func:`open_sealed`): ``0x01`` (format version) || 12-byte
  random nonce || GCM ciphertext (as long as the plaintext) || 16-byte tag. The GCM
  associated data is the version byte followed by the caller's ``aad`` (normally
  :func:`record_aad`), so neither can be changed without failing authentication.
* wrapped data key (:func:`wrap_key`, :func:`unwrap_key`): ``standard``: libsodium
  ``crypto_box_seal`` output, 32 (ephemeral key) + 16 (MAC) + 32 = 80 bytes; ``sm``:
  ``04 || x1 || y1 || C3 || C2`` = 97 + 16 = 113 bytes.
* wrapped-key bundle (:func:`encode_wrapped_keys`): one msgpack map from 32-byte member
  id (bin) to wrapped key (bin), keys in ascending byte order, shortest msgpack encodings,
  at most :data:`MAX_BUNDLE_SIZE` bytes in total.

Invariants:

* :func:`seal` draws a fresh random data key and a fresh random nonce on every call, so a
  (key, nonce) pair is never reused;
* :func:`open_sealed` returns the plaintext only if the ciphertext, its version byte and
  the associated data all authenticate; otherwise it raises :class:`TamperedError` (it
  never returns unauthenticated bytes);
* :func:`unwrap_key` returns exactly :func:`data_key_size` bytes or raises
  :class:`UnwrapError`;
* ``decode_wrapped_keys(encode_wrapped_keys(m)) == m`` and ``decode_wrapped_keys`` accepts
  only the exact bytes ``encode_wrapped_keys`` produces (one encoding per bundle).

SM2 comes from :mod:`yilian.crypto.sm2` (OpenSSL), the one implementation the node and the
SDK share; a call may pass another :class:`Sm2Backend` as ``sm2=`` (the tests pass their
independent gmssl reference to cross-check the formats).

Python cannot wipe ``bytes``: data keys and private keys stay in memory until collected.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import msgpack
import nacl.exceptions
import nacl.public
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from yilian.crypto import sm2 as openssl_sm2
from yilian.crypto.sm import SM4AuthenticationError, sm3, sm4_gcm_decrypt, sm4_gcm_encrypt
from yilian.protocol.errors import YilianError

__all__ = [
    "FORMAT_VERSION",
    "MAX_BUNDLE_SIZE",
    "MEMBER_ID_SIZE",
    "NONCE_SIZE",
    "RECORD_AAD_PREFIX",
    "RECORD_AAD_SIZE",
    "SEALED_OVERHEAD",
    "SM",
    "STANDARD",
    "SUITES",
    "TAG_SIZE",
    "EncKeyPair",
    "EnvelopeError",
    "Sealed",
    "Sm2Backend",
    "TamperedError",
    "UnwrapError",
    "check_enc_public_key",
    "data_key_size",
    "decode_wrapped_keys",
    "digest",
    "enc_public_key",
    "enc_public_key_size",
    "encode_wrapped_keys",
    "generate_enc_keypair",
    "open_sealed",
    "record_aad",
    "rewrap",
    "seal",
    "unwrap_key",
    "wrap_key",
    "wrapped_key_size",
]

STANDARD = "standard"
SM = "sm"
SUITES = (STANDARD, SM)

FORMAT_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
SEALED_OVERHEAD = 1 + NONCE_SIZE + TAG_SIZE
MEMBER_ID_SIZE = 32
MAX_BUNDLE_SIZE = 1024
RECORD_AAD_PREFIX = b"yilian-record-v1"
RECORD_AAD_SIZE = len(RECORD_AAD_PREFIX) + 20 + 32 * 7

_DATA_KEY_SIZE = {STANDARD: 32, SM: 16}
_ENC_PUBLIC_KEY_SIZE = {STANDARD: 32, SM: 64}
_ENC_PRIVATE_KEY_SIZE = {STANDARD: 32, SM: 32}
_SEALED_BOX_OVERHEAD = 48  # crypto_box_PUBLICKEYBYTES + crypto_box_MACBYTES
_SM2_OVERHEAD = openssl_sm2.CIPHERTEXT_OVERHEAD  # 04 || x1 || y1 (65) + C3 (32)
_WRAPPED_KEY_SIZE = {STANDARD: _SEALED_BOX_OVERHEAD + 32, SM: _SM2_OVERHEAD + 16}
_UINT256_LIMIT = 1 << 256


# ---------------------------------------------------------------------------------------
# errors, types
# ---------------------------------------------------------------------------------------


class EnvelopeError(YilianError, ValueError):
    """Invalid envelope input: unknown suite, wrongly sized key, malformed bundle, ..."""


class TamperedError(EnvelopeError):
    """A sealed record failed authentication (altered, truncated, or bound elsewhere)."""


class UnwrapError(EnvelopeError):
    """A wrapped data key could not be opened with the given private key."""


class Sm2Backend(Protocol):
    """SM2 (GB/T 32918) with the fixed encodings of :mod:`yilian.crypto.sm2` (the default).

    Private keys are 32-byte scalars, public keys 64 bytes ``x || y``, ciphertexts
    ``04 || x1 || y1 || C3 || C2``. Methods raise ValueError (or a subclass) on bad input,
    and ``decrypt`` raises it when the C3 check fails. A module exposing these four
    functions satisfies the protocol.
    """

    def encrypt(self, public: bytes, plaintext: bytes, /) -> bytes: ...
    def decrypt(self, private: bytes, ciphertext: bytes, /) -> bytes: ...
    def public_key(self, private: bytes, /) -> bytes: ...
    def generate_private_key(self) -> bytes: ...


@dataclass(frozen=True)
class Sealed:
    """Output of :func:`seal`: the fresh data key (wrap it, never store it in clear) and
    the sealed ciphertext (what goes on chain)."""

    data_key: bytes = field(repr=False)
    ciphertext: bytes


@dataclass(frozen=True)
class EncKeyPair:
    """An encryption (key-wrap) key pair of one suite; ``private`` is hidden from repr."""

    private: bytes = field(repr=False)
    public: bytes


def _sm2(backend: Sm2Backend | None) -> Sm2Backend:
    return openssl_sm2 if backend is None else backend


# ---------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------


def _suite(suite: str) -> str:
    if suite not in SUITES:
        known = ", ".join(repr(s) for s in SUITES)
        raise EnvelopeError(f"unknown crypto suite {suite!r}; known suites: {known}")
    return suite


def _bytes(value: object, what: str, size: int | None = None) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise EnvelopeError(f"{what} must be bytes, not {type(value).__name__}")
    out = bytes(value)
    if size is not None and len(out) != size:
        raise EnvelopeError(f"{what} must be {size} bytes, got {len(out)}")
    return out


def _uint256(value: object, what: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise EnvelopeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value < _UINT256_LIMIT:
        raise EnvelopeError(f"{what} must be in [0, 2**256), got {value}")
    return value.to_bytes(32, "big")


def data_key_size(suite: str) -> int:
    """Bytes of a record data key: 32 (AES-256) for standard, 16 (SM4) for sm."""
    return _DATA_KEY_SIZE[_suite(suite)]


def enc_public_key_size(suite: str) -> int:
    """Bytes of an encryption public key: 32 (X25519) for standard, 64 (SM2 x||y) for sm."""
    return _ENC_PUBLIC_KEY_SIZE[_suite(suite)]


def wrapped_key_size(suite: str) -> int:
    """Bytes of one wrapped data key: 80 for standard, 113 for sm."""
    return _WRAPPED_KEY_SIZE[_suite(suite)]


# ---------------------------------------------------------------------------------------
# digest, AEAD
# ---------------------------------------------------------------------------------------


def digest(suite: str, data: bytes) -> bytes:
    """The suite's 32-byte digest of ``data``: SHA-256 (standard) or SM3 (sm)."""
    data = _bytes(data, "data")
    if _suite(suite) == STANDARD:
        return hashlib.sha256(data).digest()
    return sm3(data)


def _aead_encrypt(suite: str, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Raw GCM of the suite (AES-256 or SM4): ``ciphertext || 16-byte tag``.

    ``key`` must be :func:`data_key_size` bytes and ``nonce`` 12 bytes (checked by callers).
    """
    if suite == STANDARD:
        return AESGCM(key).encrypt(nonce, plaintext, aad)
    return sm4_gcm_encrypt(key, nonce, plaintext, aad)


def _aead_decrypt(suite: str, key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`_aead_encrypt`; raises :class:`TamperedError` on a bad tag."""
    if len(data) < TAG_SIZE:
        raise TamperedError("sealed record is truncated (shorter than its 16-byte tag)")
    try:
        if suite == STANDARD:
            return AESGCM(key).decrypt(nonce, data, aad)
        return sm4_gcm_decrypt(key, nonce, data, aad)
    except (InvalidTag, SM4AuthenticationError):
        raise TamperedError(
            "sealed record failed authentication: the ciphertext or its binding (record "
            "id, version, ...) was altered, or this is the wrong data key"
        ) from None


def seal(suite: str, plaintext: bytes, aad: bytes) -> Sealed:
    """Encrypt ``plaintext`` under a fresh random data key, binding ``aad``.

    Returns the data key and ``0x01 || nonce || ciphertext || tag``
    (``len(plaintext) + 29`` bytes). Use :func:`record_aad` for ``aad``.
    """
    size = data_key_size(suite)
    plaintext = _bytes(plaintext, "plaintext")
    aad = _bytes(aad, "aad")
    key = os.urandom(size)
    nonce = os.urandom(NONCE_SIZE)
    header = bytes([FORMAT_VERSION])
    body = _aead_encrypt(suite, key, nonce, plaintext, header + aad)
    return Sealed(data_key=key, ciphertext=header + nonce + body)


def open_sealed(suite: str, data_key: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`seal`.

    Raises :class:`TamperedError` if ``ciphertext`` is malformed (too short, unknown format
    version) or does not authenticate under ``data_key`` and ``aad``; EnvelopeError if the
    data key has the wrong size for the suite.
    """
    key = _bytes(data_key, "data key", data_key_size(suite))
    ct = _bytes(ciphertext, "sealed record")
    aad = _bytes(aad, "aad")
    if len(ct) < SEALED_OVERHEAD:
        raise TamperedError(
            f"sealed record is truncated: {len(ct)} bytes, at least {SEALED_OVERHEAD} needed"
        )
    if ct[0] != FORMAT_VERSION:
        raise TamperedError(
            f"sealed record has format version {ct[0]}, expected {FORMAT_VERSION}: it was "
            "altered or written by a newer yilian (upgrade this client)"
        )
    nonce = ct[1 : 1 + NONCE_SIZE]
    return _aead_decrypt(suite, key, nonce, ct[1 + NONCE_SIZE :], ct[:1] + aad)


def record_aad(
    chain_id: int,
    records_address: bytes,
    record_id: bytes,
    version: int,
    rtype: int,
    subject: bytes,
    owner: bytes,
    schema: int,
) -> bytes:
    """The associated data that binds a sealed record to its place on chain.

    Fixed layout, :data:`RECORD_AAD_SIZE` (260) bytes, integers as 32-byte big-endian
    words (uint256, as the EVM would ``concat`` them)::

        b"yilian-record-v1" (16) || chain_id (32) || records_address (20)
        || record_id (32) || version (32) || rtype (32) || subject (32) || owner (32)
        || schema (32)

    Every field has a fixed width, so distinct argument tuples give distinct bytes and a
    ciphertext sealed for one record/version cannot be opened as another.
    """
    out = b"".join(
        (
            RECORD_AAD_PREFIX,
            _uint256(chain_id, "chain_id"),
            _bytes(records_address, "records_address", 20),
            _bytes(record_id, "record_id", 32),
            _uint256(version, "version"),
            _uint256(rtype, "rtype"),
            _bytes(subject, "subject", 32),
            _bytes(owner, "owner", 32),
            _uint256(schema, "schema"),
        )
    )
    assert len(out) == RECORD_AAD_SIZE
    return out


# ---------------------------------------------------------------------------------------
# encryption keys, key wrap
# ---------------------------------------------------------------------------------------


def check_enc_public_key(suite: str, public: bytes) -> bytes:
    """Return ``public`` as bytes if it is a well-formed encryption public key of the suite.

    standard: 32 bytes (X25519); sm: 64 bytes ``x || y`` of a point on the SM2 curve (no
    ``04`` prefix). Raises EnvelopeError naming the expected form otherwise.
    """
    size = enc_public_key_size(suite)
    if not isinstance(public, bytes | bytearray | memoryview):
        raise EnvelopeError(
            f"{suite} encryption public key must be {size} bytes, not {type(public).__name__}"
        )
    pub = bytes(public)
    if suite == STANDARD:
        if len(pub) != size:
            raise EnvelopeError(
                f"standard (X25519) encryption public key must be {size} bytes, got {len(pub)}"
            )
        return pub
    if len(pub) != size:
        hint = " (drop the leading 04)" if len(pub) == size + 1 and pub[0] == 4 else ""
        raise EnvelopeError(
            f"sm (SM2) encryption public key must be {size} bytes x || y, got {len(pub)}{hint}"
        )
    if not openssl_sm2.is_valid_public_key(pub):
        raise EnvelopeError("sm (SM2) encryption public key is not a point on the SM2 curve")
    return pub


def _private(suite: str, private: bytes) -> bytes:
    size = _ENC_PRIVATE_KEY_SIZE[suite]
    return _bytes(private, f"{suite} encryption private key", size)


def generate_enc_keypair(suite: str, *, sm2: Sm2Backend | None = None) -> EncKeyPair:
    """A fresh encryption key pair from the OS CSPRNG (X25519 or SM2)."""
    if _suite(suite) == STANDARD:
        sk = nacl.public.PrivateKey.generate()
        return EncKeyPair(private=bytes(sk), public=bytes(sk.public_key))
    backend = _sm2(sm2)
    private = backend.generate_private_key()
    return EncKeyPair(private=private, public=backend.public_key(private))


def enc_public_key(suite: str, private: bytes, *, sm2: Sm2Backend | None = None) -> bytes:
    """The encryption public key of ``private``; EnvelopeError if ``private`` is invalid."""
    priv = _private(_suite(suite), private)
    if suite == STANDARD:
        return bytes(nacl.public.PrivateKey(priv).public_key)
    try:
        return _sm2(sm2).public_key(priv)
    except EnvelopeError:
        raise
    except ValueError as exc:
        raise EnvelopeError(f"invalid sm (SM2) encryption private key: {exc}") from None


def wrap_key(
    suite: str, recipient_public: bytes, data_key: bytes, *, sm2: Sm2Backend | None = None
) -> bytes:
    """Encrypt ``data_key`` to ``recipient_public`` (:func:`wrapped_key_size` bytes).

    Randomized: wrapping the same key twice gives different bytes. Raises EnvelopeError
    for a malformed public key or a data key of the wrong size.
    """
    pub = check_enc_public_key(suite, recipient_public)
    key = _bytes(data_key, "data key", data_key_size(suite))
    try:
        if suite == STANDARD:
            out = nacl.public.SealedBox(nacl.public.PublicKey(pub)).encrypt(key)
        else:
            out = _sm2(sm2).encrypt(pub, key)
    except EnvelopeError:
        raise
    except (ValueError, nacl.exceptions.CryptoError) as exc:
        raise EnvelopeError(
            f"cannot wrap the data key for this {suite} public key: {exc}"
        ) from None
    out = bytes(out)
    if len(out) != wrapped_key_size(suite):
        raise EnvelopeError(
            f"{suite} key wrap produced {len(out)} bytes, expected {wrapped_key_size(suite)} "
            "(broken SM2 backend?)"
        )
    return out


def unwrap_key(
    suite: str, recipient_private: bytes, wrapped: bytes, *, sm2: Sm2Backend | None = None
) -> bytes:
    """Inverse of :func:`wrap_key`: the data key, exactly :func:`data_key_size` bytes.

    Raises :class:`UnwrapError` if ``wrapped`` is malformed, was altered, or was wrapped
    for another key; EnvelopeError if ``recipient_private`` has the wrong size.
    """
    priv = _private(_suite(suite), recipient_private)
    size = wrapped_key_size(suite)
    if not isinstance(wrapped, bytes | bytearray | memoryview) or len(wrapped) != size:
        got = len(wrapped) if isinstance(wrapped, bytes | bytearray | memoryview) else None
        raise UnwrapError(f"{suite} wrapped key must be {size} bytes, got {got}")
    blob = bytes(wrapped)
    try:
        if suite == STANDARD:
            key = nacl.public.SealedBox(nacl.public.PrivateKey(priv)).decrypt(blob)
        else:
            key = _sm2(sm2).decrypt(priv, blob)
    except EnvelopeError:
        raise
    except (ValueError, nacl.exceptions.CryptoError):
        raise UnwrapError(
            f"cannot unwrap the {suite} data key: it was wrapped for another key (is this "
            "the right member's private key?) or it was altered"
        ) from None
    key = bytes(key)
    if len(key) != data_key_size(suite):
        raise UnwrapError(
            f"unwrapped {suite} data key is {len(key)} bytes, expected {data_key_size(suite)}"
        )
    return key


def rewrap(
    suite: str,
    custodian_private: bytes,
    wrapped: bytes,
    grantee_public: bytes,
    *,
    sm2: Sm2Backend | None = None,
) -> bytes:
    """Unwrap ``wrapped`` with the custodian's key and wrap the data key for a grantee.

    What a custodian center's key service does to grant access; the data key never leaves
    this call. Raises :class:`UnwrapError` or EnvelopeError as the two halves do.
    """
    check_enc_public_key(suite, grantee_public)  # fail before decrypting anything
    key = unwrap_key(suite, custodian_private, wrapped, sm2=sm2)
    return wrap_key(suite, grantee_public, key, sm2=sm2)


# ---------------------------------------------------------------------------------------
# wrapped-key bundle (canonical msgpack)
# ---------------------------------------------------------------------------------------


def encode_wrapped_keys(mapping: Mapping[bytes, bytes]) -> bytes:
    """Canonical msgpack map ``{member id (bin 32): wrapped key (bin)}``, sorted by id.

    Raises EnvelopeError for a member id that is not 32 bytes, an empty or non-bytes
    wrapped key, two ids with the same bytes, or a result over :data:`MAX_BUNDLE_SIZE`.
    """
    if not isinstance(mapping, Mapping):
        raise EnvelopeError(f"wrapped keys must be a mapping, not {type(mapping).__name__}")
    items: dict[bytes, bytes] = {}
    for member, wrapped in mapping.items():
        mid = _bytes(member, "member id", MEMBER_ID_SIZE)
        blob = _bytes(wrapped, f"wrapped key of member {mid.hex()}")
        if not blob:
            raise EnvelopeError(f"wrapped key of member {mid.hex()} is empty")
        if mid in items:
            raise EnvelopeError(f"member id {mid.hex()} appears twice")
        items[mid] = blob
    ordered = {mid: items[mid] for mid in sorted(items)}
    out: bytes = msgpack.packb(ordered, use_bin_type=True)
    if len(out) > MAX_BUNDLE_SIZE:
        raise EnvelopeError(
            f"wrapped-key bundle is {len(out)} bytes, over the {MAX_BUNDLE_SIZE}-byte limit: "
            "wrap for fewer recipients (grant the others through the custodian's rewrap)"
        )
    return out


def decode_wrapped_keys(data: bytes) -> dict[bytes, bytes]:
    """Inverse of :func:`encode_wrapped_keys`, accepting only its exact (canonical) output.

    Raises EnvelopeError for anything else: over the size limit, not msgpack, trailing
    bytes, not a map, non-bin or wrongly sized keys, duplicate or unsorted ids, non-bin or
    empty values, or non-shortest encodings.
    """
    raw = _bytes(data, "wrapped-key bundle")
    if len(raw) > MAX_BUNDLE_SIZE:
        raise EnvelopeError(
            f"wrapped-key bundle is {len(raw)} bytes, over the {MAX_BUNDLE_SIZE}-byte limit"
        )
    if not raw or not (0x80 <= raw[0] <= 0x8F or raw[0] in (0xDE, 0xDF)):
        raise EnvelopeError("wrapped-key bundle is not a msgpack map")
    try:
        pairs = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            object_pairs_hook=list,
            max_str_len=MAX_BUNDLE_SIZE,
            max_bin_len=MAX_BUNDLE_SIZE,
            max_array_len=MAX_BUNDLE_SIZE,
            max_map_len=MAX_BUNDLE_SIZE,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise EnvelopeError(f"wrapped-key bundle is not valid msgpack: {exc}") from None
    if not isinstance(pairs, list):
        raise EnvelopeError("wrapped-key bundle is not a msgpack map")
    out: dict[bytes, bytes] = {}
    previous: bytes | None = None
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise EnvelopeError("wrapped-key bundle is not a msgpack map")
        member, wrapped = pair
        if type(member) is not bytes or len(member) != MEMBER_ID_SIZE:
            raise EnvelopeError(f"wrapped-key bundle: member id must be bin {MEMBER_ID_SIZE}")
        if type(wrapped) is not bytes or not wrapped:
            raise EnvelopeError(
                f"wrapped-key bundle: wrapped key of member {member.hex()} must be non-empty bin"
            )
        if previous is not None and member <= previous:
            raise EnvelopeError(
                f"wrapped-key bundle: member id {member.hex()} is duplicated or out of order"
            )
        previous = member
        out[member] = wrapped
    if msgpack.packb(out, use_bin_type=True) != raw:
        raise EnvelopeError("wrapped-key bundle is not canonically encoded")
    return out
