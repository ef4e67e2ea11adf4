"""SM2 (GB/T 32918) on the recommended curve, through the system's OpenSSL 3 libcrypto.

The elliptic-curve work is done by OpenSSL's EVP API (ctypes, no compiled extension of
our own); this module only encodes keys, signatures and ciphertexts. gmssl (pure Python,
~100x slower) is the independent reference the tests cross-check against.

Encodings (fixed; every function here enforces them):

* private key: 32-byte big-endian scalar ``d`` with ``1 <= d <= n - 2`` (``n - 1`` is
  excluded by GB/T 32918.1 because signing needs ``(1 + d)^-1 mod n``);
* public key: 64 bytes ``x || y`` (big-endian affine coordinates, *no* ``04`` prefix) of a
  point on the curve other than the point at infinity (the cofactor is 1, so every such
  point is in the prime-order group);
* signature (GB/T 32918.2): 64 bytes ``r || s``, each 32-byte big-endian, ``1 <= r, s < n``;
  the signed value is ``e = SM3(Z_A || M)`` with ``Z_A = SM3(ENTL_A || ID_A || a || b ||
  x_G || y_G || x_A || y_A)`` and, unless a caller passes ``uid``, the default
  distinguishing identifier ``ID_A = "1234567812345678"`` (GM/T 0009-2012 Sec. 10);
* ciphertext (GB/T 32918.4, order C1C3C2): ``04 || x1 || y1`` (65 bytes, C1 uncompressed)
  ``|| C3`` (32-byte SM3 MAC) ``|| C2`` (as long as the plaintext), i.e. ``97 + len(M)``
  bytes. Note gmssl's ``CryptSM2(mode=1)`` writes the same layout *without* the ``04``.

Behaviour:

* :func:`verify` never raises: malformed keys, signatures or argument types give False;
* :func:`sign`, :func:`public_key`, :func:`encrypt`, :func:`decrypt` raise
  :class:`SM2Error` (a ValueError) on bad input or an OpenSSL failure;
* parsed OpenSSL keys are cached (LRU: :data:`PUBLIC_KEY_CACHE_SIZE` public keys,
  :data:`PRIVATE_KEY_CACHE_SIZE` private keys); a cached key is freed by OpenSSL once it has
  been evicted *and* no call in progress still uses it (each wrapper object owns exactly one
  ``EVP_PKEY`` reference and frees it in ``__del__``), so every function is thread-safe and
  the ctypes calls run without the GIL;
* every OpenSSL object allocated per call is freed before the call returns, and the
  thread's OpenSSL error queue is cleared after a failure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import secrets
from typing import Any, TypeAlias

from yilian.crypto.sm import sm3

__all__ = [
    "CIPHERTEXT_OVERHEAD",
    "DEFAULT_UID",
    "PRIVATE_KEY_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "BytesLike",
    "SM2Error",
    "ciphertext_from_der",
    "ciphertext_to_der",
    "clear_caches",
    "decrypt",
    "encrypt",
    "generate_private_key",
    "is_valid_private_key",
    "is_valid_public_key",
    "openssl_version",
    "public_key",
    "sign",
    "verify",
    "z_a",
]

# Curve sm2p256v1 (GB/T 32918.5-2017).
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

DEFAULT_UID = b"1234567812345678"
PRIVATE_KEY_SIZE = 32
PUBLIC_KEY_SIZE = 64
SIGNATURE_SIZE = 64
CIPHERTEXT_OVERHEAD = 65 + 32  # C1 (04||x||y) + C3
PUBLIC_KEY_CACHE_SIZE = 4096
PRIVATE_KEY_CACHE_SIZE = 16
_MAX_UID_LEN = 8191  # ENTL_A is the bit length in 16 bits

# DER prefixes: SubjectPublicKeyInfo and PKCS#8 (ECPrivateKey without the public key,
# which OpenSSL then derives) for id-ecPublicKey with the named curve SM2 (1.2.156.10197.1.301).
_ALGID = bytes.fromhex("301306072a8648ce3d020106082a811ccf5501822d")
_SPKI_PREFIX = bytes.fromhex("3059") + _ALGID + bytes.fromhex("03420004")
_PKCS8_PREFIX = bytes.fromhex("3041020100") + _ALGID + bytes.fromhex("04273025020101") + b"\x04\x20"


BytesLike: TypeAlias = bytes | bytearray | memoryview
"""What the public functions accept for keys, messages, signatures and ciphertexts."""


class SM2Error(ValueError):
    """Invalid SM2 key, signature or ciphertext, or a failed OpenSSL operation."""


# ---------------------------------------------------------------------------------------
# libcrypto binding
# ---------------------------------------------------------------------------------------

_vp = ctypes.c_void_p
_cp = ctypes.c_char_p
_sz = ctypes.c_size_t
_int = ctypes.c_int


def _load_libcrypto() -> ctypes.CDLL:
    names = []
    found = ctypes.util.find_library("crypto")
    if found:
        names.append(found)
    names += ["libcrypto.so.3", "libcrypto.3.dylib"]
    errors = []
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        lib.OpenSSL_version_num.argtypes = []
        if lib.OpenSSL_version_num() >> 28 >= 3:
            return lib
        errors.append(f"{name}: OpenSSL older than 3.0")
    raise ImportError("SM2 needs OpenSSL 3 libcrypto; not found (" + "; ".join(errors) + ")")


def _bind(lib: ctypes.CDLL) -> None:
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "OpenSSL_version": (_cp, [_int]),
        "ERR_clear_error": (None, []),
        "d2i_PUBKEY": (_vp, [_vp, ctypes.POINTER(_cp), ctypes.c_long]),
        "d2i_AutoPrivateKey": (_vp, [_vp, ctypes.POINTER(_cp), ctypes.c_long]),
        "EVP_PKEY_free": (None, [_vp]),
        "EVP_PKEY_is_a": (_int, [_vp, _cp]),
        "EVP_PKEY_get_octet_string_param": (
            _int,
            [_vp, _cp, ctypes.c_void_p, _sz, ctypes.POINTER(_sz)],
        ),
        "EVP_MD_fetch": (_vp, [_vp, _cp, _cp]),
        "EVP_MD_CTX_new": (_vp, []),
        "EVP_MD_CTX_free": (None, [_vp]),
        "EVP_DigestSignInit": (_int, [_vp, ctypes.POINTER(_vp), _vp, _vp, _vp]),
        "EVP_DigestVerifyInit": (_int, [_vp, ctypes.POINTER(_vp), _vp, _vp, _vp]),
        "EVP_DigestSign": (_int, [_vp, ctypes.c_void_p, ctypes.POINTER(_sz), _cp, _sz]),
        "EVP_DigestVerify": (_int, [_vp, _cp, _sz, _cp, _sz]),
        "EVP_PKEY_CTX_set1_id": (_int, [_vp, _cp, _int]),
        "EVP_PKEY_CTX_new_from_pkey": (_vp, [_vp, _vp, _cp]),
        "EVP_PKEY_CTX_free": (None, [_vp]),
        "EVP_PKEY_encrypt_init": (_int, [_vp]),
        "EVP_PKEY_encrypt": (_int, [_vp, ctypes.c_void_p, ctypes.POINTER(_sz), _cp, _sz]),
        "EVP_PKEY_decrypt_init": (_int, [_vp]),
        "EVP_PKEY_decrypt": (_int, [_vp, ctypes.c_void_p, ctypes.POINTER(_sz), _cp, _sz]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


_lib = _load_libcrypto()
_bind(_lib)
_SM3_MD = _lib.EVP_MD_fetch(None, b"SM3", None)  # immutable, shared by all threads, never freed
if not _SM3_MD:
    raise ImportError("OpenSSL libcrypto has no SM3 (built with no-sm3?)")


def openssl_version() -> str:
    """The version string of the libcrypto in use, e.g. ``OpenSSL 3.0.13 30 Jan 2024``."""
    v = _lib.OpenSSL_version(0)
    return v.decode() if v else "unknown"


class _EvpKey:
    """Owns one reference to an OpenSSL ``EVP_PKEY``; frees it when garbage-collected."""

    __slots__ = ("ptr",)

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr

    def __del__(self) -> None:
        ptr, self.ptr = self.ptr, 0
        if ptr:
            try:  # noqa: SIM105 (no contextlib: this may run during interpreter shutdown)
                _lib.EVP_PKEY_free(ptr)
            except Exception:  # interpreter shutdown: the binding may already be gone
                pass


def _fail(msg: str) -> SM2Error:
    _lib.ERR_clear_error()
    return SM2Error(msg)


def _d2i(fn: Any, der: bytes) -> int:
    p = _cp(der)
    ptr = fn(None, ctypes.byref(p), len(der))
    return int(ptr or 0)


# ---------------------------------------------------------------------------------------
# key handling
# ---------------------------------------------------------------------------------------


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise SM2Error(f"{what} must be bytes, not {type(value).__name__}")


def is_valid_private_key(private: BytesLike) -> bool:
    """True iff ``private`` is 32 bytes encoding ``1 <= d <= n - 2``."""
    if not isinstance(private, bytes | bytearray | memoryview) or len(private) != 32:
        return False
    d = int.from_bytes(private, "big")
    return 1 <= d <= N - 2


def is_valid_public_key(public: BytesLike) -> bool:
    """True iff ``public`` is 64 bytes ``x || y`` of a point on the SM2 curve."""
    if not isinstance(public, bytes | bytearray | memoryview) or len(public) != 64:
        return False
    x = int.from_bytes(public[:32], "big")
    y = int.from_bytes(public[32:], "big")
    return x < P and y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def _sm2_evp(fn: Any, der: bytes, what: str, refused: str) -> _EvpKey:
    """The SM2 key OpenSSL's d2i ``fn`` parses from ``der``; SM2Error(``refused``) if it
    parses nothing, and an SM2Error naming ``what`` if it parses a key of another type."""
    ptr = _d2i(fn, der)
    if not ptr:
        raise _fail(refused)
    key = _EvpKey(ptr)
    if _lib.EVP_PKEY_is_a(ptr, b"SM2") != 1:
        raise _fail(f"OpenSSL did not load the {what} as an SM2 key")
    return key


@functools.lru_cache(maxsize=PUBLIC_KEY_CACHE_SIZE)
def _public_evp(public: bytes) -> _EvpKey:
    # Callers have checked the length; OpenSSL checks that the point is on the curve.
    return _sm2_evp(_lib.d2i_PUBKEY, _SPKI_PREFIX + public, "public key",
                    "invalid SM2 public key (not a point on the curve)")


@functools.lru_cache(maxsize=PRIVATE_KEY_CACHE_SIZE)
def _private_evp(private: bytes) -> _EvpKey:
    if not is_valid_private_key(private):
        raise SM2Error("SM2 private key must be 32 bytes with 1 <= d <= n-2")
    return _sm2_evp(_lib.d2i_AutoPrivateKey, _PKCS8_PREFIX + private, "private key",
                    "OpenSSL rejected the SM2 private key")


def _load_public(public: object) -> _EvpKey:
    pub = _as_bytes(public, "SM2 public key")
    if len(pub) != PUBLIC_KEY_SIZE:
        raise SM2Error(f"SM2 public key must be {PUBLIC_KEY_SIZE} bytes (x || y)")
    return _public_evp(pub)


def _load_private(private: object) -> _EvpKey:
    return _private_evp(_as_bytes(private, "SM2 private key"))


def clear_caches() -> None:
    """Drop the parsed-key caches (keys still in use by a running call stay alive)."""
    _public_evp.cache_clear()
    _private_evp.cache_clear()


def generate_private_key() -> bytes:
    """A fresh private key: 32 bytes from ``secrets`` (the OS CSPRNG), redrawn until valid."""
    while True:
        d = secrets.token_bytes(PRIVATE_KEY_SIZE)
        if is_valid_private_key(d):
            return d


def public_key(private: BytesLike) -> bytes:
    """The 64-byte public key ``x || y`` of ``d·G`` (computed by OpenSSL)."""
    key = _load_private(private)
    buf = ctypes.create_string_buffer(80)
    n = _sz(0)
    if _lib.EVP_PKEY_get_octet_string_param(key.ptr, b"pub", buf, 80, ctypes.byref(n)) != 1:
        raise _fail("could not read the SM2 public key from OpenSSL")
    raw = buf.raw[: n.value]
    if len(raw) != 65 or raw[0] != 4:
        raise SM2Error("unexpected public key encoding from OpenSSL")
    return raw[1:]


def z_a(public: BytesLike, uid: BytesLike = DEFAULT_UID) -> bytes:
    """``Z_A`` of GB/T 32918.2 Sec. 5.5 for ``public`` and ``uid`` (pure Python, SM3)."""
    pub = _as_bytes(public, "SM2 public key")
    if len(pub) != PUBLIC_KEY_SIZE:
        raise SM2Error(f"SM2 public key must be {PUBLIC_KEY_SIZE} bytes (x || y)")
    uid = _check_uid(uid)
    entl = (8 * len(uid)).to_bytes(2, "big")
    params = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))
    return sm3(entl + uid + params + pub)


# ---------------------------------------------------------------------------------------
# DER helpers (signatures: ECDSA-Sig-Value; ciphertexts: GM/T 0009-2012 SM2Cipher)
# ---------------------------------------------------------------------------------------


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_uint(v: int) -> bytes:
    # bit_length // 8 + 1 bytes is the minimal two's-complement length of a v >= 0.
    return _der_tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def _der_read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """Read one TLV with ``tag`` at ``pos``; returns (value, next position)."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise SM2Error("malformed DER")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        nbytes = length & 0x7F
        if nbytes == 0 or nbytes > 4 or pos + nbytes > len(data):
            raise SM2Error("malformed DER length")
        length = int.from_bytes(data[pos : pos + nbytes], "big")
        pos += nbytes
    if pos + length > len(data):
        raise SM2Error("truncated DER")
    return data[pos : pos + length], pos + length


def _der_read_uint(data: bytes, pos: int) -> tuple[int, int]:
    body, pos = _der_read(data, pos, 0x02)
    if not body or body[0] & 0x80:
        raise SM2Error("negative or empty DER INTEGER")
    return int.from_bytes(body, "big"), pos


def _sig_to_der(r: int, s: int) -> bytes:
    return _der_tlv(0x30, _der_uint(r) + _der_uint(s))


def _sig_from_der(der: bytes) -> bytes:
    body, end = _der_read(der, 0, 0x30)
    if end != len(der):
        raise SM2Error("trailing bytes after DER signature")
    r, pos = _der_read_uint(body, 0)
    s, pos = _der_read_uint(body, pos)
    if pos != len(body) or not (0 < r < N and 0 < s < N):
        raise SM2Error("malformed DER signature")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


# ---------------------------------------------------------------------------------------
# signatures
# ---------------------------------------------------------------------------------------


def _check_uid(uid: object) -> bytes:
    uid = _as_bytes(uid, "SM2 user id")
    if len(uid) > _MAX_UID_LEN:
        raise SM2Error("SM2 user id too long")
    return uid


def sign(private: BytesLike, message: BytesLike, *, uid: BytesLike = DEFAULT_UID) -> bytes:
    """SM2 signature ``r || s`` (64 bytes) of ``message`` with Z_A over ``uid``.

    Randomized (a fresh nonce from OpenSSL's CSPRNG each call), so two signatures of the
    same message differ; both verify.
    """
    key = _load_private(private)
    msg = _as_bytes(message, "message")
    uid = _check_uid(uid)
    mctx = _lib.EVP_MD_CTX_new()
    if not mctx:
        raise _fail("EVP_MD_CTX_new failed")
    try:
        pctx = _vp()
        if _lib.EVP_DigestSignInit(mctx, ctypes.byref(pctx), _SM3_MD, None, key.ptr) != 1:
            raise _fail("EVP_DigestSignInit failed")
        if _lib.EVP_PKEY_CTX_set1_id(pctx, uid, len(uid)) != 1:
            raise _fail("setting the SM2 distinguishing id failed")
        buf = ctypes.create_string_buffer(80)
        siglen = _sz(80)
        if _lib.EVP_DigestSign(mctx, buf, ctypes.byref(siglen), msg, len(msg)) != 1:
            raise _fail("SM2 signing failed")
        return _sig_from_der(buf.raw[: siglen.value])
    finally:
        _lib.EVP_MD_CTX_free(mctx)


def verify(
    public: BytesLike, message: BytesLike, signature: BytesLike, *, uid: BytesLike = DEFAULT_UID,
    strict: bool = False,
) -> bool:
    """True iff ``signature`` (64-byte ``r || s``) is a valid SM2 signature of ``message``
    under ``public`` (64-byte ``x || y``) and ``uid``. Never raises: anything malformed
    (wrong types or lengths, ``r`` or ``s`` outside ``[1, n-1]``, a public key off the
    curve) is simply False.

    With ``strict`` (the chain's precompile, whose answer must not depend on this machine's
    state) a failure inside OpenSSL itself (no memory for a context, an init or digest
    error) raises :class:`SM2Error` instead of answering False; only a signature OpenSSL
    checked and found wrong is False.
    """
    try:
        if (
            not isinstance(signature, bytes | bytearray | memoryview)
            or len(signature) != SIGNATURE_SIZE
            or not isinstance(message, bytes | bytearray | memoryview)
        ):
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < N and 0 < s < N):
            return False
        key = _load_public(public)
        msg = message if isinstance(message, bytes) else bytes(message)
        uid = _check_uid(uid)
        der = _sig_to_der(r, s)
    except (SM2Error, TypeError, ValueError):
        if strict:
            raise
        return False
    mctx = _lib.EVP_MD_CTX_new()
    if not mctx:
        _lib.ERR_clear_error()
        if strict:
            raise _fail("EVP_MD_CTX_new failed")
        return False
    try:
        pctx = _vp()
        ready = (
            _lib.EVP_DigestVerifyInit(mctx, ctypes.byref(pctx), _SM3_MD, None, key.ptr) == 1
            and _lib.EVP_PKEY_CTX_set1_id(pctx, uid, len(uid)) == 1
        )
        if not ready:
            _lib.ERR_clear_error()
            if strict:
                raise _fail("setting up SM2 verification failed")
            return False
        answer = _lib.EVP_DigestVerify(mctx, der, len(der), msg, len(msg))
        if answer != 1:
            _lib.ERR_clear_error()
            if strict and answer < 0:
                raise _fail("SM2 verification failed inside OpenSSL")
        return bool(answer == 1)
    finally:
        _lib.EVP_MD_CTX_free(mctx)


# ---------------------------------------------------------------------------------------
# public-key encryption (GB/T 32918.4)
# ---------------------------------------------------------------------------------------


def _pkey_crypt(key: _EvpKey, data: bytes, encrypt_: bool) -> bytes:
    ctx = _lib.EVP_PKEY_CTX_new_from_pkey(None, key.ptr, None)
    if not ctx:
        raise _fail("EVP_PKEY_CTX_new_from_pkey failed")
    init = _lib.EVP_PKEY_encrypt_init if encrypt_ else _lib.EVP_PKEY_decrypt_init
    op = _lib.EVP_PKEY_encrypt if encrypt_ else _lib.EVP_PKEY_decrypt
    what = "encryption" if encrypt_ else "decryption"
    try:
        if init(ctx) != 1:
            raise _fail(f"SM2 {what} init failed")
        outlen = _sz(0)
        if op(ctx, None, ctypes.byref(outlen), data, len(data)) != 1:
            raise _fail(f"SM2 {what} failed")
        buf = ctypes.create_string_buffer(max(outlen.value, 1))
        if op(ctx, buf, ctypes.byref(outlen), data, len(data)) != 1:
            raise _fail(f"SM2 {what} failed")
        return buf.raw[: outlen.value]
    finally:
        _lib.EVP_PKEY_CTX_free(ctx)


def ciphertext_from_der(der: BytesLike) -> bytes:
    """GM/T 0009-2012 ASN.1 ``SM2Cipher`` (what OpenSSL emits) -> ``04||x1||y1||C3||C2``.

    Raises :class:`SM2Error` if ``der`` is not exactly one well-formed SM2Cipher with a
    32-byte C3, coordinates below p and a non-empty C2. (C1 is not checked to be on the
    curve here; :func:`decrypt` does that.)
    """
    der = _as_bytes(der, "ciphertext")
    body, end = _der_read(der, 0, 0x30)
    if end != len(der):
        raise SM2Error("trailing bytes after SM2Cipher")
    x, pos = _der_read_uint(body, 0)
    y, pos = _der_read_uint(body, pos)
    c3, pos = _der_read(body, pos, 0x04)
    c2, pos = _der_read(body, pos, 0x04)
    if pos != len(body) or len(c3) != 32 or not c2 or x >= P or y >= P:
        raise SM2Error("malformed SM2Cipher")
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big") + c3 + c2


def ciphertext_to_der(ciphertext: BytesLike) -> bytes:
    """``04||x1||y1||C3||C2`` -> GM/T 0009-2012 ASN.1 ``SM2Cipher`` (inverse of the above)."""
    ct = _as_bytes(ciphertext, "ciphertext")
    if len(ct) <= CIPHERTEXT_OVERHEAD or ct[0] != 4:
        raise SM2Error("SM2 ciphertext must be 04||x1||y1||C3||C2 with a non-empty C2")
    x = int.from_bytes(ct[1:33], "big")
    y = int.from_bytes(ct[33:65], "big")
    c3, c2 = ct[65:97], ct[97:]
    return _der_tlv(0x30, _der_uint(x) + _der_uint(y) + _der_tlv(0x04, c3) + _der_tlv(0x04, c2))


def encrypt(public: BytesLike, plaintext: BytesLike) -> bytes:
    """SM2-encrypt ``plaintext`` (non-empty) to ``public``: ``04||x1||y1 || C3 || C2``.

    Randomized; the ciphertext is ``97 + len(plaintext)`` bytes. SM3 is the KDF and MAC hash.
    """
    key = _load_public(public)
    msg = _as_bytes(plaintext, "plaintext")
    if not msg:
        raise SM2Error("SM2 cannot encrypt an empty plaintext")
    ct = ciphertext_from_der(_pkey_crypt(key, msg, True))
    if len(ct) != CIPHERTEXT_OVERHEAD + len(msg):
        raise SM2Error("unexpected SM2 ciphertext from OpenSSL")
    return ct


def decrypt(private: BytesLike, ciphertext: BytesLike) -> bytes:
    """Inverse of :func:`encrypt`. Raises :class:`SM2Error` unless C1 is a curve point and
    the C3 check (SM3 over ``x2 || M || y2``) passes, so tampered ciphertexts are rejected.
    """
    key = _load_private(private)
    return _pkey_crypt(key, ciphertext_to_der(ciphertext), False)
