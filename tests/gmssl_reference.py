"""SM2 public-key encryption (GB/T 32918.4-2016) on gmssl (pure Python): the tests'
independent cross-check of :mod:`yilian.crypto.sm2` (OpenSSL), the one SM2 the product uses.

Produces and consumes exactly the encodings of :mod:`yilian.crypto.sm2`, so a data key
wrapped by either opens on the other:

* private key: 32-byte big-endian scalar ``d`` with ``1 <= d <= n - 2``;
* public key: 64 bytes ``x || y`` (no ``04`` prefix) of a point on the SM2 curve;
* ciphertext, order C1C3C2: ``04 || x1 || y1`` (65) ``|| C3`` (32, SM3 MAC) ``|| C2``
  (as long as the plaintext), i.e. ``97 + len(M)`` bytes.

The module itself satisfies :class:`yilian.protocol.envelope.Sm2Backend`
(:func:`encrypt`, :func:`decrypt`, :func:`public_key`, :func:`generate_private_key`), so
tests pass it as ``sm2=`` to the envelope functions. Only the curve constants come from
:mod:`yilian.crypto.sm2`; the arithmetic is gmssl's.

gmssl supplies the curve arithmetic (``CryptSM2._kg``) and SM3 / the SM3 KDF; the
encryption and decryption procedures are written out here because gmssl's own
``CryptSM2.encrypt``/``decrypt`` are not safe to use as they are:

* ``encrypt`` draws k with ``random.choice`` (Mersenne Twister, predictable) and may draw
  ``k = 0`` or ``k >= n``; here k comes from :mod:`secrets`, uniform in ``[1, n - 1]``;
* ``decrypt`` computes C3 but never compares it, and does not check that C1 is on the
  curve (invalid-curve attacks); here both are checked and a mismatch raises;
* ``CryptSM2(public_key=...)`` strips every leading ``0``/``4`` hex digit of a key
  (``str.lstrip("04")``); here keys never pass through the constructor;
* gmssl omits the ``04`` of C1 and cannot encrypt an empty message; here C1 carries it
  and an empty plaintext raises :class:`Sm2Error`;
* if the KDF output is all zero gmssl returns None; here encryption redraws k
  (GB/T 32918.4 step A5) and decryption raises.

Every function raises :class:`Sm2Error` (a ValueError) on malformed input or a failed
check, never returns unauthenticated plaintext, and is thread-safe (no shared mutable
state). Pure Python big-int arithmetic is neither fast (5-10 ms per operation) nor
constant-time: fine for a test reference, not for production.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TypeAlias

from gmssl import sm2 as _gm_sm2
from gmssl import sm3 as _gm_sm3

from yilian.crypto.sm2 import GX, GY, A, B, N, P

__all__ = [
    "CIPHERTEXT_OVERHEAD",
    "PRIVATE_KEY_SIZE",
    "PUBLIC_KEY_SIZE",
    "BytesLike",
    "Sm2Error",
    "decrypt",
    "encrypt",
    "generate_private_key",
    "is_valid_private_key",
    "is_valid_public_key",
    "public_key",
]

PRIVATE_KEY_SIZE = 32
PUBLIC_KEY_SIZE = 64
CIPHERTEXT_OVERHEAD = 65 + 32  # C1 (04||x||y) + C3

BytesLike: TypeAlias = bytes | bytearray | memoryview

# _kg, _double_point and _add_point read only the curve table, so one instance can be
# shared by all threads. The key arguments are left empty on purpose (see the docstring).
_CURVE = _gm_sm2.CryptSM2(private_key="", public_key="", mode=1)
_G_HEX = f"{GX:064x}{GY:064x}"


class Sm2Error(ValueError):
    """Invalid SM2 key or ciphertext, or a failed decryption check."""


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise Sm2Error(f"{what} must be bytes, not {type(value).__name__}")


def is_valid_private_key(private: BytesLike) -> bool:
    """True iff ``private`` is 32 bytes encoding ``1 <= d <= n - 2``."""
    if not isinstance(private, bytes | bytearray | memoryview) or len(private) != 32:
        return False
    return 1 <= int.from_bytes(private, "big") <= N - 2


def is_valid_public_key(public: BytesLike) -> bool:
    """True iff ``public`` is 64 bytes ``x || y`` of a point on the SM2 curve."""
    if not isinstance(public, bytes | bytearray | memoryview) or len(public) != 64:
        return False
    x = int.from_bytes(public[:32], "big")
    y = int.from_bytes(public[32:], "big")
    return x < P and y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def _check_private(private: object) -> int:
    d = _as_bytes(private, "SM2 private key")
    if not is_valid_private_key(d):
        raise Sm2Error("SM2 private key must be 32 bytes with 1 <= d <= n-2")
    return int.from_bytes(d, "big")


def _check_public(public: object) -> bytes:
    pub = _as_bytes(public, "SM2 public key")
    if len(pub) != PUBLIC_KEY_SIZE:
        raise Sm2Error(f"SM2 public key must be {PUBLIC_KEY_SIZE} bytes (x || y)")
    if not is_valid_public_key(pub):
        raise Sm2Error("invalid SM2 public key (not a point on the curve)")
    return pub


def _mul(k: int, point_hex: str) -> str:
    """``[k]point`` as 128 hex digits ``x || y``; ``1 <= k < n`` and point on the curve."""
    out = _CURVE._kg(k, point_hex)
    if not isinstance(out, str) or len(out) != 128:  # point at infinity: cannot happen
        raise Sm2Error("SM2 scalar multiplication gave the point at infinity")
    return out


def _kdf(xy_hex: str, size: int) -> bytes:
    return bytes.fromhex(_gm_sm3.sm3_kdf(xy_hex.encode("ascii"), size))


def _sm3(data: bytes) -> bytes:
    return bytes.fromhex(_gm_sm3.sm3_hash(list(data)))


def generate_private_key() -> bytes:
    """A fresh private key: 32 bytes from ``secrets`` (the OS CSPRNG), redrawn until valid."""
    while True:
        d = secrets.token_bytes(PRIVATE_KEY_SIZE)
        if is_valid_private_key(d):
            return d


def public_key(private: BytesLike) -> bytes:
    """The 64-byte public key ``x || y`` of ``d·G``."""
    return bytes.fromhex(_mul(_check_private(private), _G_HEX))


def _encrypt_with_k(public: bytes, msg: bytes, k: int) -> bytes | None:
    """GB/T 32918.4 steps A2-A8 for a given ``k``; None if the KDF output is all zero.

    ``public`` must be a checked public key, ``msg`` non-empty and ``1 <= k < n``. Exposed
    to the tests only (the published vectors fix k); never call it with a chosen k.
    """
    c1 = _mul(k, _G_HEX)  # A2
    xy = _mul(k, public.hex())  # A4 (A3: the cofactor is 1, a curve point is not infinity)
    t = _kdf(xy, len(msg))  # A5
    if not any(t):
        return None
    c2 = bytes(a ^ b for a, b in zip(msg, t, strict=True))  # A6
    x2, y2 = bytes.fromhex(xy[:64]), bytes.fromhex(xy[64:])
    c3 = _sm3(x2 + msg + y2)  # A7
    return b"\x04" + bytes.fromhex(c1) + c3 + c2  # A8, C1C3C2


def encrypt(public: BytesLike, plaintext: BytesLike) -> bytes:
    """SM2-encrypt ``plaintext`` (non-empty) to ``public``: ``04||x1||y1 || C3 || C2``.

    Randomized (k from :mod:`secrets`); ``97 + len(plaintext)`` bytes.
    """
    pub = _check_public(public)
    msg = _as_bytes(plaintext, "plaintext")
    if not msg:
        raise Sm2Error("SM2 cannot encrypt an empty plaintext")
    while True:
        k = 1 + secrets.randbelow(N - 1)  # A1
        out = _encrypt_with_k(pub, msg, k)
        if out is not None:
            return out


def decrypt(private: BytesLike, ciphertext: BytesLike) -> bytes:
    """Inverse of :func:`encrypt`.

    Raises :class:`Sm2Error` unless the ciphertext is ``04||x1||y1||C3||C2`` with a
    non-empty C2, C1 is a point on the curve, and C3 equals ``SM3(x2 || M || y2)``.
    """
    d = _check_private(private)
    ct = _as_bytes(ciphertext, "ciphertext")
    if len(ct) <= CIPHERTEXT_OVERHEAD or ct[0] != 4:
        raise Sm2Error("SM2 ciphertext must be 04||x1||y1||C3||C2 with a non-empty C2")
    c1, c3, c2 = ct[1:65], ct[65:97], ct[97:]
    if not is_valid_public_key(c1):  # B1 (B2: cofactor 1)
        raise Sm2Error("SM2 decryption failed: C1 is not a point on the curve")
    xy = _mul(d, c1.hex())  # B3
    t = _kdf(xy, len(c2))  # B4
    if not any(t):
        raise Sm2Error("SM2 decryption failed: the KDF output is all zero")
    msg = bytes(a ^ b for a, b in zip(c2, t, strict=True))  # B5
    u = _sm3(bytes.fromhex(xy[:64]) + msg + bytes.fromhex(xy[64:]))  # B6
    if not hmac.compare_digest(u, c3):
        raise Sm2Error(
            "SM2 decryption failed: C3 check failed (wrong private key or altered ciphertext)"
        )
    return msg

