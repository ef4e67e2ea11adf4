"""Crypto suites, fixed at genesis, for node and consensus keys; private-key files.

Two suites (transaction signatures are secp256k1 in both and are not handled here):

========== ================================ ==================== ============
name       node/consensus signatures        digest (``digest``)  ``node_id``
========== ================================ ==================== ============
standard   Ed25519 (RFC 8032, PyNaCl)       SHA-256              sha256(pub)[-20:]
sm         SM2 + SM3, ID "1234567812345678" SM3                  sm3(pub)[-20:]
========== ================================ ==================== ============

Sizes (bytes):

* ``standard``: private key 32 (the RFC 8032 seed), public key 32, signature 64;
* ``sm``: private key 32 (scalar ``d``, ``1 <= d <= n-2``), public key 64 (``x || y``, no
  ``04`` prefix), signature 64 (``r || s``). See :mod:`yilian.crypto.sm2`.

Invariants every :class:`Suite` keeps:

* ``verify(public_key(k), m, sign(k, m))`` is True for every valid key ``k`` and message ``m``;
* ``verify`` never raises: malformed or wrongly-sized keys/signatures, or non-bytes
  arguments, give False;
* ``digest`` returns :attr:`Suite.digest_size` (32) bytes; ``node_id`` returns 20 bytes,
  the last 20 bytes of ``digest(public)``, and raises ValueError for a malformed public key;
* ``generate_private_key``, ``public_key``, ``sign`` and ``node_id`` raise ValueError on
  invalid input.

Why SHA-256 (not keccak-256) for ``standard``: the suite digest names nodes and hashes
consensus messages; it is independent of the EVM's keccak state commitments, and SHA-256
is the digest standardised alongside Ed25519 (and by the trading centres' other systems).

Private-key files (:func:`save_private_key`, :func:`load_private_key`) hold one line: the
key in lowercase hex. They are created with mode 0600 and refused on load when group or
others have any permission bit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from typing import Protocol, runtime_checkable

import nacl.bindings
import nacl.exceptions
import nacl.signing

from yilian.crypto import sm2
from yilian.crypto.sm import sm3

__all__ = [
    "NODE_ID_SIZE",
    "SM",
    "STANDARD",
    "SUITES",
    "KeyFilePermissionError",
    "Suite",
    "UnknownSuiteError",
    "get_suite",
    "load_private_key",
    "save_private_key",
]

NODE_ID_SIZE = 20


@runtime_checkable
class Suite(Protocol):
    """A signature scheme plus a digest, identified by :attr:`name` in the genesis."""

    @property
    def name(self) -> str: ...
    @property
    def private_key_size(self) -> int: ...
    @property
    def public_key_size(self) -> int: ...
    @property
    def signature_size(self) -> int: ...
    @property
    def digest_size(self) -> int: ...

    def generate_private_key(self) -> bytes:
        """A fresh random private key from the OS CSPRNG."""
        ...

    def public_key(self, private: bytes) -> bytes:
        """The public key of ``private``; ValueError if ``private`` is invalid."""
        ...

    def sign(self, private: bytes, message: bytes) -> bytes:
        """A signature of ``message``; ValueError if ``private`` is invalid."""
        ...

    def verify(self, public: bytes, message: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is valid; never raises."""
        ...

    def digest(self, data: bytes) -> bytes:
        """The suite's 32-byte digest of ``data``."""
        ...

    def node_id(self, public: bytes) -> bytes:
        """20-byte id: the last 20 bytes of ``digest(public)``; ValueError if malformed."""
        ...


def _is_bytes(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview)


class _StandardSuite:
    """Ed25519 (PyNaCl/libsodium) + SHA-256."""

    name = "standard"
    private_key_size = 32
    public_key_size = 32
    signature_size = 64
    digest_size = 32

    def __repr__(self) -> str:
        return "<Suite standard>"

    def generate_private_key(self) -> bytes:
        return os.urandom(32)

    def _signing_key(self, private: bytes) -> nacl.signing.SigningKey:
        if not _is_bytes(private) or len(private) != 32:
            raise ValueError("Ed25519 private key must be a 32-byte seed")
        return nacl.signing.SigningKey(bytes(private))

    def public_key(self, private: bytes) -> bytes:
        return bytes(self._signing_key(private).verify_key)

    def sign(self, private: bytes, message: bytes) -> bytes:
        if not _is_bytes(message):
            raise ValueError("message must be bytes")
        return self._signing_key(private).sign(bytes(message)).signature

    def verify(self, public: bytes, message: bytes, signature: bytes) -> bool:
        if not (_is_bytes(public) and _is_bytes(message) and _is_bytes(signature)):
            return False
        if len(public) != 32 or len(signature) != 64:
            return False
        try:
            nacl.bindings.crypto_sign_open(bytes(signature) + bytes(message), bytes(public))
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            return False
        return True

    def digest(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def node_id(self, public: bytes) -> bytes:
        if not _is_bytes(public) or len(public) != 32:
            raise ValueError("Ed25519 public key must be 32 bytes")
        return self.digest(bytes(public))[-NODE_ID_SIZE:]


class _SMSuite:
    """SM2 (default ID) + SM3, through :mod:`yilian.crypto.sm2`."""

    name = "sm"
    private_key_size = sm2.PRIVATE_KEY_SIZE
    public_key_size = sm2.PUBLIC_KEY_SIZE
    signature_size = sm2.SIGNATURE_SIZE
    digest_size = 32

    def __repr__(self) -> str:
        return "<Suite sm>"

    def generate_private_key(self) -> bytes:
        return sm2.generate_private_key()

    def public_key(self, private: bytes) -> bytes:
        return sm2.public_key(private)

    def sign(self, private: bytes, message: bytes) -> bytes:
        return sm2.sign(private, message)

    def verify(self, public: bytes, message: bytes, signature: bytes) -> bool:
        return sm2.verify(public, message, signature)

    def digest(self, data: bytes) -> bytes:
        return sm3(data)

    def node_id(self, public: bytes) -> bytes:
        if not sm2.is_valid_public_key(public):
            raise ValueError("SM2 public key must be 64 bytes x || y of a curve point")
        return self.digest(bytes(public))[-NODE_ID_SIZE:]


STANDARD: Suite = _StandardSuite()
SM: Suite = _SMSuite()
SUITES: dict[str, Suite] = {STANDARD.name: STANDARD, SM.name: SM}


class UnknownSuiteError(ValueError):
    """The genesis (or a caller) named a crypto suite this node does not implement."""


def get_suite(name: str) -> Suite:
    """The suite called ``name`` (``"standard"`` or ``"sm"``, exact match)."""
    try:
        return SUITES[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in sorted(SUITES))
        raise UnknownSuiteError(f"unknown crypto suite {name!r}; known suites: {known}") from None


# ---------------------------------------------------------------------------------------
# private-key files
# ---------------------------------------------------------------------------------------


class KeyFilePermissionError(PermissionError):
    """A private-key file is accessible by group or others."""


def _write_key(fd: int, key: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key.hex().encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def save_private_key(path: str | os.PathLike[str], key: bytes, *, overwrite: bool = False) -> None:
    """Write ``key`` (hex, one line) to ``path`` with mode 0600.

    The file is created with ``os.open(..., 0o600)``, so it is never readable by others,
    not even briefly. Without ``overwrite`` an existing file is left alone and
    FileExistsError is raised; with it, the key goes to a temporary 0600 file in the same
    directory that then atomically replaces ``path``.
    """
    if not _is_bytes(key) or len(key) == 0:
        raise ValueError("private key must be non-empty bytes")
    key = bytes(key)
    path = os.fspath(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    if not overwrite:
        fd = os.open(path, flags, 0o600)
        try:
            _write_key(fd, key)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        return
    tmp = f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    fd = os.open(tmp, flags, 0o600)
    try:
        _write_key(fd, key)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_private_key(path: str | os.PathLike[str], suite: Suite | None = None) -> bytes:
    """Read a key written by :func:`save_private_key`.

    Raises KeyFilePermissionError if the file (after following symlinks) grants group or
    others any permission, ValueError if the content is not one line of hex or, when
    ``suite`` is given, not a valid private key of that suite.
    """
    path = os.fspath(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o077:
            raise KeyFilePermissionError(
                f"private key file {path} has mode {mode:04o}: group/others must have no "
                f"access; fix it with `chmod 600 {path}`"
            )
        raw = f.read(4097)
    try:
        text = raw.decode("ascii").strip()
        key = bytes.fromhex(text)
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"private key file {path} is not one line of hex") from None
    if not key:
        raise ValueError(f"private key file {path} is empty")
    if suite is not None:
        if len(key) != suite.private_key_size:
            raise ValueError(
                f"private key in {path} is {len(key)} bytes; suite {suite.name!r} needs "
                f"{suite.private_key_size}"
            )
        try:
            suite.public_key(key)
        except ValueError as exc:
            raise ValueError(
                f"private key in {path} is invalid for suite {suite.name!r}: {exc}"
            ) from exc
    return key
