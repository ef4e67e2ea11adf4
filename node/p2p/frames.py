"""Framed, encrypted message channel used after the p2p handshake.

Wire format of one frame (each direction independently)::

    +----------------------+-------------------------------------------+
    | length: u32 big-end. | ChaCha20-Poly1305-IETF(key_dir, nonce_n,  |
    | (= len(ciphertext))  |   aad=length prefix, plaintext) + 16B tag |
    +----------------------+-------------------------------------------+

* ``nonce_n`` is the 96-bit big-endian encoding of the per-direction frame
  counter ``n = 0, 1, 2, ...``.  Each direction has its own key (derived in the
  handshake), so (key, nonce) pairs never repeat: the counter only ever
  increases, a sealed frame always consumes a counter value, and a
  :class:`CipherState` refuses to seal/open once the counter reaches
  :data:`MAX_COUNTER` (the connection must then be closed and re-established,
  which yields fresh keys -- re-keying in place is not implemented because
  2**64 frames is unreachable in practice).
* Because the receiver's counter must match the sender's exactly, replayed,
  reordered, dropped or injected frames fail authentication.
* ``length`` is checked against ``max_frame_bytes`` (and the 16-byte minimum)
  **before** the body is read, so a peer cannot make us buffer more than
  ``max_frame_bytes``.
* The plaintext is msgpack of a two-element array ``[type: int, body]``;
  ``0 <= type <= MAX_MSG_TYPE``.  Types below :data:`FIRST_APP_TYPE` are
  reserved for the transport itself (handshake, keep-alive); applications use
  ``FIRST_APP_TYPE..MAX_MSG_TYPE``.  Decoding uses ``raw=False``,
  ``strict_map_key=True``, no ext types and bounded lengths
  (:class:`DecodeLimits`).

Error contract: anything wrong with received data (bad length, failed
authentication, undecodable msgpack, wrong message shape, truncation) raises
:class:`FrameError` and nothing else; the channel owner must then close the
connection.  A clean end of stream at a frame boundary raises
:class:`ChannelClosed`.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

import msgpack
from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_ABYTES,
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
    crypto_aead_chacha20poly1305_ietf_KEYBYTES,
)
from nacl.exceptions import CryptoError

LENGTH_PREFIX_BYTES = 4
TAG_BYTES: int = crypto_aead_chacha20poly1305_ietf_ABYTES  # 16
KEY_BYTES: int = crypto_aead_chacha20poly1305_ietf_KEYBYTES  # 32
NONCE_BYTES = 12
#: The counter value at which a direction is exhausted (never used as a nonce).
MAX_COUNTER = 2**64 - 1
#: Default upper bound on one frame's ciphertext (length-prefix value).
DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
#: Highest message type; types are u16.
MAX_MSG_TYPE = 0xFFFF
#: Types ``0 .. FIRST_APP_TYPE - 1`` are reserved for the transport.
FIRST_APP_TYPE = 16

# Reserved transport message types.
MSG_HS_AUTH = 0  # handshake: [identity public key, signature]
MSG_HS_ACCEPT = 1  # handshake: responder accepted the initiator (body: None)
MSG_HS_REJECT = 2  # handshake: responder refused the initiator (body: reason str)
MSG_PING = 3  # keep-alive (body: None); never delivered to the application

_LEN = struct.Struct(">I")


class FrameError(Exception):
    """Received data violates the frame protocol; the connection must be closed."""


class ChannelClosed(Exception):
    """The peer closed the stream cleanly at a frame boundary."""


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds applied by the msgpack unpacker to every received payload."""

    max_bin_len: int = DEFAULT_MAX_FRAME_BYTES
    max_str_len: int = 1024 * 1024
    max_array_len: int = 100_000
    max_map_len: int = 100_000


DEFAULT_LIMITS = DecodeLimits()


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack ext type {code} not allowed")


def pack_message(msg_type: int, body: Any) -> bytes:
    """Encode ``[msg_type, body]`` as msgpack (bin type for bytes).

    Raises ``ValueError`` for a type outside ``0..MAX_MSG_TYPE`` and
    ``TypeError``/``ValueError`` if ``body`` is not msgpack-serialisable.
    """
    if isinstance(msg_type, bool) or not isinstance(msg_type, int):
        raise ValueError(f"message type must be an int, not {type(msg_type).__name__}")
    if not 0 <= msg_type <= MAX_MSG_TYPE:
        raise ValueError(f"message type {msg_type} out of range 0..{MAX_MSG_TYPE}")
    try:
        data: bytes = msgpack.packb([msg_type, body], use_bin_type=True)
    except (OverflowError, ValueError) as exc:  # e.g. int out of range, too deep
        raise ValueError(f"body not serialisable: {exc}") from exc
    return data


def unpack_message(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[int, Any]:
    """Decode a plaintext payload to ``(type, body)``; raises only :class:`FrameError`."""
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_bin_len=limits.max_bin_len,
            max_str_len=limits.max_str_len,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            max_ext_len=0,
            ext_hook=_reject_ext,
        )
    except Exception as exc:  # msgpack raises a zoo of ValueError/TypeError/...
        raise FrameError(f"undecodable payload: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, list) or len(obj) != 2:
        raise FrameError("payload is not a [type, body] array")
    msg_type, body = obj
    if isinstance(msg_type, bool) or not isinstance(msg_type, int):
        raise FrameError("message type is not an int")
    if not 0 <= msg_type <= MAX_MSG_TYPE:
        raise FrameError(f"message type {msg_type} out of range")
    return msg_type, body


class CipherState:
    """One direction of the channel: a key and a strictly increasing nonce counter.

    Invariant: every successful :meth:`encrypt`/:meth:`decrypt` uses the current
    counter as nonce and then increments it; no nonce is ever used twice with
    the same key; at :data:`MAX_COUNTER` the state refuses to operate.
    """

    def __init__(self, key: bytes, counter: int = 0) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("ChaCha20-Poly1305 key must be 32 bytes")
        self._key = bytes(key)
        self.counter = counter

    def _nonce(self) -> bytes:
        if self.counter >= MAX_COUNTER:
            raise FrameError("nonce counter exhausted; connection must be re-established")
        return self.counter.to_bytes(NONCE_BYTES, "big")

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = self._nonce()
        ct: bytes = crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, aad, nonce, self._key)
        self.counter += 1
        return ct

    def decrypt(self, ciphertext: bytes, aad: bytes) -> bytes:
        nonce = self._nonce()
        try:
            pt: bytes = crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, self._key)
        except CryptoError:
            raise FrameError("frame authentication failed") from None
        self.counter += 1
        return pt


class FrameCodec:
    """Sans-IO frame sealing/opening for one connection (both directions)."""

    def __init__(
        self,
        send_key: bytes,
        recv_key: bytes,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:
        if max_frame_bytes < TAG_BYTES + 1 or max_frame_bytes > 0xFFFFFFFF:
            raise ValueError("max_frame_bytes out of range")
        self.send_state = CipherState(send_key)
        self.recv_state = CipherState(recv_key)
        self.max_frame_bytes = max_frame_bytes
        self.limits = limits

    @property
    def max_payload_bytes(self) -> int:
        """Largest plaintext (packed message) that fits in one frame."""
        return self.max_frame_bytes - TAG_BYTES

    def seal_payload(self, payload: bytes) -> bytes:
        """Encrypt an already packed message; returns prefix + ciphertext.

        Raises ``ValueError`` (without consuming a nonce) if it does not fit.
        """
        if len(payload) > self.max_payload_bytes:
            raise ValueError(
                f"message of {len(payload)} bytes exceeds the frame limit "
                f"({self.max_payload_bytes} bytes)"
            )
        prefix = _LEN.pack(len(payload) + TAG_BYTES)
        return prefix + self.send_state.encrypt(payload, prefix)

    def seal(self, msg_type: int, body: Any) -> bytes:
        return self.seal_payload(pack_message(msg_type, body))

    def parse_length(self, prefix: bytes, limit: int | None = None) -> int:
        """Validate a 4-byte length prefix against the frame limit (before any body read)."""
        if len(prefix) != LENGTH_PREFIX_BYTES:
            raise FrameError("truncated length prefix")
        (length,) = _LEN.unpack(prefix)
        cap = self.max_frame_bytes if limit is None else min(limit, self.max_frame_bytes)
        if length > cap:
            raise FrameError(f"frame of {length} bytes exceeds limit of {cap}")
        if length < TAG_BYTES:
            raise FrameError(f"frame of {length} bytes is shorter than the AEAD tag")
        return int(length)

    def open(self, prefix: bytes, ciphertext: bytes) -> tuple[int, Any]:
        """Authenticate and decode one frame body; raises only :class:`FrameError`."""
        if len(ciphertext) != self.parse_length(prefix):
            raise FrameError("frame length mismatch")
        return unpack_message(self.recv_state.decrypt(ciphertext, prefix), self.limits)

    def decode_frames(self, data: bytes) -> list[tuple[int, Any]]:
        """Decode a complete byte string of consecutive frames (testing helper)."""
        out: list[tuple[int, Any]] = []
        pos = 0
        while pos < len(data):
            prefix = data[pos : pos + LENGTH_PREFIX_BYTES]
            length = self.parse_length(prefix)
            body = data[pos + LENGTH_PREFIX_BYTES : pos + LENGTH_PREFIX_BYTES + length]
            if len(body) != length:
                raise FrameError("truncated frame")
            out.append(self.open(prefix, body))
            pos += LENGTH_PREFIX_BYTES + length
        return out


class SecureChannel:
    """An established encrypted connection over an asyncio stream pair.

    ``send``/``send_payload`` write a whole frame synchronously before awaiting
    ``drain``, so concurrent senders never interleave frame bytes and frames
    leave in counter order.  ``recv`` must only be called by one task at a time.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        codec: FrameCodec,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.codec = codec

    @property
    def max_payload_bytes(self) -> int:
        return self.codec.max_payload_bytes

    async def send(self, msg_type: int, body: Any) -> None:
        await self.send_payload(pack_message(msg_type, body))

    async def send_payload(self, payload: bytes) -> None:
        """Send a message already encoded with :func:`pack_message`."""
        self.writer.write(self.codec.seal_payload(payload))
        await self.writer.drain()

    async def recv(self, limit: int | None = None) -> tuple[int, Any]:
        """Receive one message.

        ``limit`` optionally lowers the frame size cap for this read (used in
        the handshake).  Raises :class:`ChannelClosed` on EOF at a frame
        boundary, :class:`FrameError` on any protocol violation (including
        EOF mid-frame), and ``OSError`` on transport errors.
        """
        try:
            prefix = await self.reader.readexactly(LENGTH_PREFIX_BYTES)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise ChannelClosed("peer closed the connection") from None
            raise FrameError("truncated length prefix") from None
        length = self.codec.parse_length(prefix, limit)
        try:
            body = await self.reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise FrameError("truncated frame") from None
        return self.codec.open(prefix, body)

    def close(self) -> None:
        """Close gracefully (buffered frames are still flushed)."""
        if not self.writer.is_closing():
            self.writer.close()

    def abort(self) -> None:
        """Drop the connection immediately, discarding buffered output."""
        self.writer.transport.abort()

    async def wait_closed(self, timeout: float = 1.0) -> None:
        """Wait until the transport is closed; abort it if that takes > ``timeout``."""
        self.close()
        try:
            async with asyncio.timeout(timeout):
                await self.writer.wait_closed()
        except (TimeoutError, OSError):
            self.abort()
