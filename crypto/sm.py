"""SM3 digests (GB/T 32905-2016) and SM4 (GB/T 32907-2016) through ``cryptography``.

Invariants:

* :func:`sm3` returns exactly 32 bytes;
* :func:`sm4_gcm_encrypt` returns ``ciphertext || tag``: ``len(plaintext) + 16`` bytes,
  with a full 16-byte tag; :func:`sm4_gcm_decrypt` returns the plaintext only when the tag
  authenticates both the ciphertext and the associated data, otherwise it raises
  :class:`SM4AuthenticationError` (never returns unauthenticated bytes);
* keys are exactly 16 bytes and GCM nonces exactly 12 bytes (the only nonce size with the
  standard 96-bit counter construction); anything else raises :class:`ValueError`.

A (key, nonce) pair must never be reused for two different messages: GCM loses both
confidentiality and integrity if it is. Callers draw nonces with :func:`new_nonce` (random,
96 bits) or from a counter they own.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SM3_DIGEST_SIZE = 32
SM4_KEY_SIZE = 16
SM4_BLOCK_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16

__all__ = [
    "GCM_NONCE_SIZE",
    "GCM_TAG_SIZE",
    "SM3_DIGEST_SIZE",
    "SM4_BLOCK_SIZE",
    "SM4_KEY_SIZE",
    "SM4AuthenticationError",
    "new_nonce",
    "sm3",
    "sm4_encrypt_block",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]


class SM4AuthenticationError(ValueError):
    """SM4-GCM tag check failed: wrong key, nonce or associated data, or tampered data."""


def sm3(data: bytes) -> bytes:
    """SM3 digest of ``data`` (32 bytes)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != SM4_KEY_SIZE:
        raise ValueError(f"SM4 key must be {SM4_KEY_SIZE} bytes")


def _check_nonce(nonce: bytes) -> None:
    if not isinstance(nonce, bytes | bytearray) or len(nonce) != GCM_NONCE_SIZE:
        raise ValueError(f"SM4-GCM nonce must be {GCM_NONCE_SIZE} bytes")


def new_nonce() -> bytes:
    """A fresh random 12-byte GCM nonce (os.urandom)."""
    return os.urandom(GCM_NONCE_SIZE)


def sm4_encrypt_block(key: bytes, block: bytes) -> bytes:
    """Raw SM4 encryption of one 16-byte block (the primitive of GB/T 32907; for tests).

    Not a mode of operation: never use it to encrypt data.
    """
    _check_key(key)
    if len(block) != SM4_BLOCK_SIZE:
        raise ValueError(f"SM4 block must be {SM4_BLOCK_SIZE} bytes")
    enc = Cipher(algorithms.SM4(bytes(key)), modes.ECB()).encryptor()
    return enc.update(bytes(block)) + enc.finalize()


def sm4_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """SM4-GCM: ``ciphertext || 16-byte tag`` of ``plaintext`` under ``key``/``nonce``.

    ``aad`` is authenticated but not encrypted (it is not part of the output).
    """
    _check_key(key)
    _check_nonce(nonce)
    enc = Cipher(algorithms.SM4(bytes(key)), modes.GCM(bytes(nonce))).encryptor()
    if aad:
        enc.authenticate_additional_data(bytes(aad))
    ct = enc.update(bytes(plaintext)) + enc.finalize()
    return ct + enc.tag


def sm4_gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """Inverse of :func:`sm4_gcm_encrypt`; raises :class:`SM4AuthenticationError` on a bad tag.

    ``data`` is ``ciphertext || tag``; data shorter than a tag raises the same error.
    """
    _check_key(key)
    _check_nonce(nonce)
    if len(data) < GCM_TAG_SIZE:
        raise SM4AuthenticationError("SM4-GCM data shorter than the 16-byte tag")
    data = bytes(data)
    ct, tag = data[:-GCM_TAG_SIZE], data[-GCM_TAG_SIZE:]
    dec = Cipher(algorithms.SM4(bytes(key)), modes.GCM(bytes(nonce), tag)).decryptor()
    if aad:
        dec.authenticate_additional_data(bytes(aad))
    try:
        return dec.update(ct) + dec.finalize()
    except InvalidTag:
        raise SM4AuthenticationError("SM4-GCM authentication failed") from None
