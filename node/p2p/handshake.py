"""Mutually authenticated key exchange between consortium members (SIGMA / Noise-XX style).

The identity signature scheme is injected (Ed25519 under the ``standard``
suite, SM2 under ``sm``), so this module only sees opaque public keys,
signatures and two callables: :class:`Identity` ``.sign(message) -> signature``
for ourselves and ``verify(public_key, message, signature) -> bool`` for peers.
The member list (the node keys named in genesis) is ``members``: a collection
of public keys or a predicate.

Protocol (I = initiator/dialler, R = responder; ``||`` is concatenation;
``lp(x)`` is a 4-byte big-endian length followed by ``x``)::

  1. I -> R   HELLO_I  = lp(msgpack(["yilian-p2p", 1, chain_id, genesis_hash, e_I]))
  2. R -> I   HELLO_R  = lp(msgpack(["yilian-p2p", 1, chain_id, genesis_hash, e_R]))
              AUTH_R   = frame_r2i#0( [MSG_HS_AUTH, [pk_R, sig_R]] )
  3. I -> R   AUTH_I   = frame_i2r#0( [MSG_HS_AUTH, [pk_I, sig_I]] )
  4. R -> I   ACCEPT   = frame_r2i#1( [MSG_HS_ACCEPT, None] )
              (or REJECT = frame_r2i#1([MSG_HS_REJECT, reason]) and close)

  e_X      fresh X25519 ephemeral public key (new key pair per connection)
  h        = SHA-256(lp("yilian-p2p/1 transcript") || lp(HELLO_I body) || lp(HELLO_R body))
  ss       = X25519(e_I_priv, e_R) = X25519(e_R_priv, e_I)   (all-zero result refused)
  k_i2r, k_r2i = HKDF-SHA256(ikm=ss, salt=h, info="yilian-p2p/1 i2r" / "... r2i", 32 B)
  sig_R    = Sign_R("yilian-p2p/1 auth responder" || h || lp(pk_R))
  sig_I    = Sign_I("yilian-p2p/1 auth initiator" || h || lp(pk_I) || lp(pk_R))
  frame_d#n  ChaCha20-Poly1305 frame with key k_d and nonce counter n
             (see :mod:`yilian.node.p2p.frames`; transport frames continue at
             n = 1 for I->R and n = 2 for R->I).

Checks (any failure closes the connection, logs the reason at WARNING and
raises :class:`HandshakeError`; nothing else escapes except cancellation):

* HELLO: protocol name and version equal ours; chain id and genesis hash equal
  ours (a node of another network is refused); ``e`` is 32 bytes and differs
  from our own ephemeral; HELLO is at most :data:`HELLO_MAX_BYTES`.
* AUTH: the peer key is in ``members``, is not our own key, equals
  ``expected_peer`` when the dialler named one, and the signature verifies
  under the peer key over the role-specific message above.  AUTH frames are
  capped at :data:`AUTH_MAX_FRAME_BYTES`.
* The whole exchange must finish within ``timeout`` seconds.

Security argument (informal):

* Mutual authentication: each side signs the transcript hash ``h``, which
  contains both fresh ephemerals, with its long-term key, and the verifier
  only accepts keys from the genesis member list.  An attacker without a
  member's private key cannot produce a signature over a transcript containing
  the honest party's fresh ephemeral.  The identities are also bound to the
  session keys: AUTH is sent under AEAD keys derived from ``ss`` and ``h``, so
  only the holder of the ephemeral secret can present (or replace) it, which
  rules out the identity-misbinding attack on sign-only DH (the SIGMA "MAC"
  role is played by the AEAD).  ``sig_I`` additionally covers ``pk_R``.
* Role separation: the signed messages carry distinct "initiator" /
  "responder" labels, so a signature cannot be reflected in the other role;
  identical ephemerals (a reflected HELLO) are refused.
* Key confirmation: successful decryption of AUTH proves the peer derived the
  same keys; ACCEPT tells the initiator that the responder accepted it, so
  both sides agree the connection is established before any application data.
* Forward secrecy: traffic keys depend only on the ephemeral X25519 secrets,
  which are discarded after the handshake; later compromise of a long-term
  identity key does not reveal past traffic.
* Replay protection: every connection uses fresh ephemerals, so ``h`` and the
  keys are new; replayed HELLO/AUTH messages from an old session fail the
  signature check (different ``h``) or AEAD decryption.  Within a session the
  per-direction nonce counters reject replayed or reordered frames.
* Network separation: chain id and genesis hash are in HELLO (checked) and in
  ``h`` (signed), so a member key of another network cannot be used here.
* Identity hiding is not a goal: R reveals its (encrypted but unauthenticated-
  to-R) identity to any initiator that completes message 2; I reveals its
  identity only to an authenticated responder.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import msgpack
from nacl.bindings import crypto_scalarmult
from nacl.public import PrivateKey

from yilian.node.p2p.frames import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_FRAME_BYTES,
    MSG_HS_ACCEPT,
    MSG_HS_AUTH,
    MSG_HS_REJECT,
    ChannelClosed,
    DecodeLimits,
    FrameCodec,
    FrameError,
    SecureChannel,
)

log = logging.getLogger(__name__)

PROTOCOL_NAME = "yilian-p2p"
PROTOCOL_VERSION = 1
HELLO_MAX_BYTES = 256
AUTH_MAX_FRAME_BYTES = 4096
MAX_PUBLIC_KEY_BYTES = 256
MAX_SIGNATURE_BYTES = 512
MAX_GENESIS_HASH_BYTES = 64
DEFAULT_HANDSHAKE_TIMEOUT = 5.0

_TRANSCRIPT_LABEL = b"yilian-p2p/1 transcript"
_SIG_LABEL_RESPONDER = b"yilian-p2p/1 auth responder"
_SIG_LABEL_INITIATOR = b"yilian-p2p/1 auth initiator"
_KDF_INFO_I2R = b"yilian-p2p/1 i2r"
_KDF_INFO_R2I = b"yilian-p2p/1 r2i"
_LEN = struct.Struct(">I")

Sign = Callable[[bytes], bytes]
#: ``verify(public_key, message, signature) -> bool``; exceptions count as False.
Verify = Callable[[bytes, bytes, bytes], bool]
Members = Callable[[bytes], bool] | Collection[bytes]


@dataclass(frozen=True)
class Identity:
    """Our long-term node identity: the public key as named in genesis and a signer."""

    public_key: bytes
    sign: Sign = field(repr=False)


@dataclass(frozen=True)
class NetworkId:
    """Which network we belong to; both values must match for a handshake to succeed."""

    chain_id: int
    genesis_hash: bytes


class HandshakeError(Exception):
    """The handshake failed; ``reason`` is a human-readable cause (also logged)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _member_predicate(members: Members) -> Callable[[bytes], bool]:
    if callable(members):
        return members
    frozen = frozenset(bytes(m) for m in members)
    return frozen.__contains__


@dataclass(frozen=True)
class HandshakeConfig:
    """Everything a node needs to run the handshake (shared by all its connections)."""

    identity: Identity
    network: NetworkId
    verify: Verify = field(repr=False)
    members: Members = field(repr=False)
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    limits: DecodeLimits = DEFAULT_LIMITS

    def is_member(self, public_key: bytes) -> bool:
        try:
            return bool(_member_predicate(self.members)(public_key))
        except Exception:
            log.exception("member predicate raised; treating key as unknown")
            return False


@dataclass(frozen=True)
class HandshakeResult:
    """An authenticated connection: the peer's identity key and the encrypted channel."""

    channel: SecureChannel
    peer_public_key: bytes
    outbound: bool  # True if we dialled (were the initiator)
    transcript_hash: bytes


def _lp(data: bytes) -> bytes:
    return _LEN.pack(len(data)) + data


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def transcript_hash(hello_i: bytes, hello_r: bytes) -> bytes:
    return hashlib.sha256(_lp(_TRANSCRIPT_LABEL) + _lp(hello_i) + _lp(hello_r)).digest()


def responder_sig_message(h: bytes, pk_r: bytes) -> bytes:
    return _SIG_LABEL_RESPONDER + h + _lp(pk_r)


def initiator_sig_message(h: bytes, pk_i: bytes, pk_r: bytes) -> bytes:
    return _SIG_LABEL_INITIATOR + h + _lp(pk_i) + _lp(pk_r)


def derive_keys(ss: bytes, h: bytes) -> tuple[bytes, bytes]:
    """Return ``(k_i2r, k_r2i)``."""
    return _hkdf_sha256(ss, h, _KDF_INFO_I2R), _hkdf_sha256(ss, h, _KDF_INFO_R2I)


def _encode_hello(network: NetworkId, ephemeral: bytes) -> bytes:
    body: bytes = msgpack.packb(
        [PROTOCOL_NAME, PROTOCOL_VERSION, network.chain_id, network.genesis_hash, ephemeral],
        use_bin_type=True,
    )
    return body


def _check_hello(body: bytes, network: NetworkId, own_ephemeral: bytes) -> bytes:
    """Validate a HELLO body; return the peer's ephemeral public key."""
    try:
        obj = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_bin_len=HELLO_MAX_BYTES,
            max_str_len=64,
            max_array_len=8,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception:
        raise HandshakeError("malformed hello") from None
    if not isinstance(obj, list) or len(obj) != 5:
        raise HandshakeError("malformed hello")
    name, version, chain_id, genesis_hash, eph = obj
    if name != PROTOCOL_NAME:
        raise HandshakeError(f"wrong protocol {name!r}")
    if not isinstance(version, int) or isinstance(version, bool):
        raise HandshakeError("malformed hello")
    if version != PROTOCOL_VERSION:
        raise HandshakeError(f"unsupported protocol version {version}")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool):
        raise HandshakeError("malformed hello")
    if chain_id != network.chain_id:
        raise HandshakeError(f"wrong network: chain id {chain_id} != {network.chain_id}")
    if not isinstance(genesis_hash, bytes) or len(genesis_hash) > MAX_GENESIS_HASH_BYTES:
        raise HandshakeError("malformed hello")
    if genesis_hash != network.genesis_hash:
        raise HandshakeError(
            f"wrong network: genesis hash {genesis_hash.hex()[:16]}... "
            f"!= {network.genesis_hash.hex()[:16]}..."
        )
    if not isinstance(eph, bytes) or len(eph) != 32:
        raise HandshakeError("malformed hello: bad ephemeral key")
    if eph == own_ephemeral:
        raise HandshakeError("reflected hello")
    return eph


async def _read_hello(reader: asyncio.StreamReader) -> bytes:
    try:
        prefix = await reader.readexactly(4)
        (length,) = _LEN.unpack(prefix)
        if length > HELLO_MAX_BYTES:
            raise HandshakeError(f"oversized hello ({length} bytes)")
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise HandshakeError("connection closed during handshake") from None


def _shared_secret(own: PrivateKey, peer_eph: bytes) -> bytes:
    try:
        ss: bytes = crypto_scalarmult(bytes(own), peer_eph)
    except Exception:  # libsodium refuses low-order points (all-zero output)
        raise HandshakeError("invalid ephemeral key") from None
    if ss == bytes(32):
        raise HandshakeError("invalid ephemeral key")
    return ss


def _parse_auth(msg: tuple[int, Any]) -> tuple[bytes, bytes]:
    msg_type, body = msg
    if msg_type != MSG_HS_AUTH or not isinstance(body, list) or len(body) != 2:
        raise HandshakeError("malformed auth message")
    pk, sig = body
    if not isinstance(pk, bytes) or not 0 < len(pk) <= MAX_PUBLIC_KEY_BYTES:
        raise HandshakeError("malformed auth message: public key")
    if not isinstance(sig, bytes) or not 0 < len(sig) <= MAX_SIGNATURE_BYTES:
        raise HandshakeError("malformed auth message: signature")
    return pk, sig


def _check_peer(
    config: HandshakeConfig, pk: bytes, sig: bytes, message: bytes, expected: bytes | None
) -> None:
    if pk == config.identity.public_key:
        raise HandshakeError("peer presented our own key (connected to self?)")
    if expected is not None and pk != expected:
        raise HandshakeError(
            f"unexpected peer key {pk.hex()[:16]}..., wanted {expected.hex()[:16]}..."
        )
    if not config.is_member(pk):
        raise HandshakeError(f"unknown key {pk.hex()[:16]}... is not a member")
    try:
        ok = bool(config.verify(pk, message, sig))
    except Exception:
        ok = False
    if not ok:
        raise HandshakeError(f"bad signature from {pk.hex()[:16]}...")


def _peername(writer: asyncio.StreamWriter) -> str:
    try:
        peer = writer.get_extra_info("peername")
    except Exception:
        peer = None
    return str(peer) if peer is not None else "?"


async def _run(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: HandshakeConfig,
    outbound: bool,
    expected_peer: bytes | None,
) -> HandshakeResult:
    where = _peername(writer)
    role = "outbound" if outbound else "inbound"
    try:
        async with asyncio.timeout(config.timeout):
            if outbound:
                return await _initiator(reader, writer, config, expected_peer)
            return await _responder(reader, writer, config)
    except HandshakeError as exc:
        reason = exc.reason
    except TimeoutError:
        reason = f"timeout after {config.timeout}s"
    except FrameError as exc:
        reason = f"malformed frame: {exc}"
    except ChannelClosed:
        reason = "connection closed during handshake"
    except OSError as exc:
        reason = f"transport error: {exc!r}"
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
    except Exception as exc:  # never let a peer crash the node
        log.exception("unexpected error in %s handshake with %s", role, where)
        reason = f"internal error: {type(exc).__name__}"
    writer.transport.abort()
    log.warning("p2p %s handshake with %s refused: %s", role, where, reason)
    raise HandshakeError(reason)


async def _initiator(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: HandshakeConfig,
    expected_peer: bytes | None,
) -> HandshakeResult:
    eph = PrivateKey.generate()
    e_i = bytes(eph.public_key)
    hello_i = _encode_hello(config.network, e_i)
    writer.write(_lp(hello_i))
    await writer.drain()

    hello_r = await _read_hello(reader)
    e_r = _check_hello(hello_r, config.network, e_i)
    h = transcript_hash(hello_i, hello_r)
    k_i2r, k_r2i = derive_keys(_shared_secret(eph, e_r), h)
    del eph
    codec = FrameCodec(k_i2r, k_r2i, max_frame_bytes=config.max_frame_bytes, limits=config.limits)
    channel = SecureChannel(reader, writer, codec)

    pk_r, sig_r = _parse_auth(await channel.recv(limit=AUTH_MAX_FRAME_BYTES))
    _check_peer(config, pk_r, sig_r, responder_sig_message(h, pk_r), expected_peer)

    pk_i = config.identity.public_key
    sig_i = config.identity.sign(initiator_sig_message(h, pk_i, pk_r))
    await channel.send(MSG_HS_AUTH, [pk_i, sig_i])

    msg_type, body = await channel.recv(limit=AUTH_MAX_FRAME_BYTES)
    if msg_type == MSG_HS_REJECT:
        reason = body[:200] if isinstance(body, str) else "?"
        raise HandshakeError(f"refused by peer: {reason}")
    if msg_type != MSG_HS_ACCEPT:
        raise HandshakeError("malformed accept message")
    return HandshakeResult(channel, pk_r, True, h)


async def _responder(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: HandshakeConfig,
) -> HandshakeResult:
    eph = PrivateKey.generate()
    e_r = bytes(eph.public_key)
    hello_i = await _read_hello(reader)
    e_i = _check_hello(hello_i, config.network, e_r)
    hello_r = _encode_hello(config.network, e_r)
    h = transcript_hash(hello_i, hello_r)
    k_i2r, k_r2i = derive_keys(_shared_secret(eph, e_i), h)
    del eph
    codec = FrameCodec(k_r2i, k_i2r, max_frame_bytes=config.max_frame_bytes, limits=config.limits)
    channel = SecureChannel(reader, writer, codec)

    pk_r = config.identity.public_key
    sig_r = config.identity.sign(responder_sig_message(h, pk_r))
    writer.write(_lp(hello_r) + codec.seal(MSG_HS_AUTH, [pk_r, sig_r]))
    await writer.drain()

    pk_i, sig_i = _parse_auth(await channel.recv(limit=AUTH_MAX_FRAME_BYTES))
    try:
        _check_peer(config, pk_i, sig_i, initiator_sig_message(h, pk_i, pk_r), None)
    except HandshakeError as exc:
        try:
            writer.write(codec.seal(MSG_HS_REJECT, exc.reason))
            await writer.drain()
        except Exception:
            pass
        raise
    await channel.send(MSG_HS_ACCEPT, None)
    return HandshakeResult(channel, pk_i, False, h)


async def initiate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: HandshakeConfig,
    expected_peer: bytes | None = None,
) -> HandshakeResult:
    """Run the handshake as the dialling side.

    If ``expected_peer`` is given, the responder must present exactly that key.
    On failure the transport is aborted, the reason logged, and
    :class:`HandshakeError` raised.
    """
    return await _run(reader, writer, config, True, expected_peer)


async def respond(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: HandshakeConfig,
) -> HandshakeResult:
    """Run the handshake as the accepting side (same failure contract as :func:`initiate`)."""
    return await _run(reader, writer, config, False, None)
