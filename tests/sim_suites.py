"""Signature suites for the consensus simulation (tests only): ``keygen(seed32)`` and
``verify``, for Ed25519 (PyNaCl) and the node's own `standard` and `sm` suites.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import nacl.exceptions
import nacl.signing

from yilian.crypto.suites import SM, STANDARD, Suite


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class SignatureSuite:
    """``keygen(seed32) -> (signer, public_key)``; ``verify(pub, msg, sig) -> bool``."""

    name: str
    keygen: Callable[[bytes], tuple[Signer, bytes]]
    verify: Callable[[bytes, bytes, bytes], bool]


class _Ed25519Signer:
    def __init__(self, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self._key.verify_key)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)


def _ed25519_keygen(seed: bytes) -> tuple[Signer, bytes]:
    s = _Ed25519Signer(seed)
    return s, s.public_key


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, ValueError, TypeError):
        return False
    return True


ED25519 = SignatureSuite("ed25519", _ed25519_keygen, _ed25519_verify)

# Runs of one scenario family share keys (derived from the seed) and many messages, so the
# SM2 work (the bulk of an `sm` run) is done once per process: a signature made for a
# (key, message) is reused (as a signer may), and a signature once verified valid is not
# verified again. Invalid signatures are never cached: every one is checked.
_SIGNATURES: dict[tuple[str, bytes, bytes], bytes] = {}
_VALID: set[tuple[str, bytes, bytes, bytes]] = set()
_CACHE_BOUND = 100_000


class _NodeSuiteSigner:
    def __init__(self, suite: Suite, private: bytes) -> None:
        self._suite = suite
        self._private = private
        self.public_key = suite.public_key(private)

    def sign(self, message: bytes) -> bytes:
        key = (self._suite.name, self._private, message)
        sig = _SIGNATURES.get(key)
        if sig is None:
            if len(_SIGNATURES) > _CACHE_BOUND:
                _SIGNATURES.clear()
            sig = _SIGNATURES[key] = self._suite.sign(self._private, message)
        return sig


def _node_suite(suite: Suite) -> SignatureSuite:
    """The node's own crypto suite (yilian.crypto.suites) as a simulation suite."""

    def keygen(seed: bytes) -> tuple[Signer, bytes]:
        # A valid private key derived from the seed, so runs stay reproducible.
        private = seed
        counter = 0
        while True:
            try:
                signer = _NodeSuiteSigner(suite, private)
                break
            except ValueError:
                counter += 1
                private = hashlib.sha256(seed + bytes([counter])).digest()
        return signer, signer.public_key

    def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (suite.name, public_key, message, signature)
        if key in _VALID:
            return True
        ok = suite.verify(public_key, message, signature)
        if ok:
            if len(_VALID) > _CACHE_BOUND:
                _VALID.clear()
            _VALID.add(key)
        return ok

    return SignatureSuite(suite.name, keygen, verify)


#: The suites every simulation test runs with: the node's `standard` (Ed25519) and `sm`
#: (SM2 with SM3, through OpenSSL) suites.
SUITES: list[SignatureSuite] = [_node_suite(STANDARD), _node_suite(SM)]
