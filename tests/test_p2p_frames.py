"""Frame codec of the p2p transport: round trip, robustness, tamper and limit checks."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.node.p2p.frames import (
    MAX_COUNTER,
    MAX_MSG_TYPE,
    TAG_BYTES,
    ChannelClosed,
    DecodeLimits,
    FrameCodec,
    FrameError,
    SecureChannel,
    pack_message,
    unpack_message,
)

K1 = bytes(range(32))
K2 = bytes(range(32, 64))

msgpack_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.binary(max_size=200),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10) | st.binary(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
msg_types = st.integers(min_value=0, max_value=MAX_MSG_TYPE)


def pair(
    max_frame_bytes: int = 1 << 16, limits: DecodeLimits | None = None
) -> tuple[FrameCodec, FrameCodec]:
    kw: dict[str, Any] = {"max_frame_bytes": max_frame_bytes}
    if limits is not None:
        kw["limits"] = limits
    return FrameCodec(K1, K2, **kw), FrameCodec(K2, K1, **kw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(msg_types, msgpack_values), min_size=1, max_size=5))
def test_round_trip(messages: list[tuple[int, Any]]) -> None:
    a, b = pair()
    wire = b"".join(a.seal(t, body) for t, body in messages)
    assert b.decode_frames(wire) == [(t, body) for t, body in messages]
    # and the other direction, independently keyed
    wire2 = b"".join(b.seal(t, body) for t, body in messages)
    assert a.decode_frames(wire2) == [(t, body) for t, body in messages]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_wire_bytes_raise_only_frame_error(data: bytes) -> None:
    _, b = pair()
    with contextlib.suppress(FrameError):
        b.decode_frames(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_plaintext_raises_only_frame_error(data: bytes) -> None:
    """Even correctly encrypted garbage only ever yields FrameError (or a valid message)."""
    a, b = pair()
    frame = a.seal_payload(data)
    try:
        msg_type, _ = b.decode_frames(frame)[0]
    except FrameError:
        return
    assert 0 <= msg_type <= MAX_MSG_TYPE
    try:
        unpack_message(data)
    except FrameError:  # pragma: no cover - decode_frames succeeded so this must too
        raise AssertionError("inconsistent decoding") from None


@settings(max_examples=200, deadline=None)
@given(msg_types, msgpack_values, st.data())
def test_tampered_frame_rejected(msg_type: int, body: Any, data: st.DataObject) -> None:
    a, b = pair()
    frame = bytearray(a.seal(msg_type, body))
    i = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    frame[i] ^= 1 << bit
    with pytest.raises(FrameError):
        b.decode_frames(bytes(frame))


def test_replayed_and_reordered_frames_rejected() -> None:
    a, b = pair()
    f0, f1 = a.seal(16, "x"), a.seal(16, "y")
    with pytest.raises(FrameError):
        b.decode_frames(f1)  # out of order
    a, b = pair()
    f0 = a.seal(16, "x")
    assert b.decode_frames(f0) == [(16, "x")]
    with pytest.raises(FrameError):
        b.decode_frames(f0)  # replay


def test_wrong_key_rejected() -> None:
    a, _ = pair()
    c = FrameCodec(K2, os.urandom(32))
    with pytest.raises(FrameError):
        c.decode_frames(a.seal(16, b"hi"))


def test_length_prefix_limits() -> None:
    _, b = pair(max_frame_bytes=1000)
    with pytest.raises(FrameError, match="exceeds limit"):
        b.parse_length(b"\xff\xff\xff\xff")
    with pytest.raises(FrameError, match="exceeds limit"):
        b.parse_length((1001).to_bytes(4, "big"))
    with pytest.raises(FrameError, match="shorter than"):
        b.parse_length((TAG_BYTES - 1).to_bytes(4, "big"))
    assert b.parse_length((1000).to_bytes(4, "big")) == 1000


def test_oversized_send_refused_without_consuming_nonce() -> None:
    a, b = pair(max_frame_bytes=100)
    with pytest.raises(ValueError, match="exceeds the frame limit"):
        a.seal(16, b"x" * 200)
    assert a.send_state.counter == 0
    assert b.decode_frames(a.seal(16, b"ok")) == [(16, b"ok")]


def test_counter_exhaustion_refuses() -> None:
    a, _ = pair()
    a.send_state.counter = MAX_COUNTER
    with pytest.raises(FrameError, match="exhausted"):
        a.seal(16, None)


def test_decode_limits_and_strictness() -> None:
    limits = DecodeLimits(max_bin_len=10, max_str_len=10, max_array_len=10, max_map_len=10)
    bad = [
        msgpack.packb([16, b"x" * 11], use_bin_type=True),
        msgpack.packb([16, "x" * 11]),
        msgpack.packb([16, list(range(11))]),
        msgpack.packb([16, {str(i): i for i in range(11)}]),
        msgpack.packb([16, {1: 2}]),  # non-str map key
        msgpack.packb([16, msgpack.ExtType(5, b"")]),  # ext types refused
        msgpack.packb([16, msgpack.ExtType(5, b"abcd")]),
        msgpack.packb([16]),
        msgpack.packb([16, 1, 2]),
        msgpack.packb(["16", 1]),
        msgpack.packb([True, 1]),
        msgpack.packb([-1, 1]),
        msgpack.packb([MAX_MSG_TYPE + 1, 1]),
        msgpack.packb({"a": 1}),
        b"\xa1\xff",  # invalid utf-8 str
        b"\x91" * 5000,  # nesting bomb
        msgpack.packb([16, 1]) + b"\x00",  # trailing data
    ]
    for data in bad:
        with pytest.raises(FrameError):
            unpack_message(data, limits)
    assert unpack_message(msgpack.packb([16, {"k": [b"x" * 10]}], use_bin_type=True), limits) == (
        16,
        {"k": [b"x" * 10]},
    )


def test_pack_message_validates_type() -> None:
    for t in (-1, MAX_MSG_TYPE + 1, True):
        with pytest.raises(ValueError):
            pack_message(t, None)
    with pytest.raises(TypeError):
        pack_message(16, object())


def test_stream_recv_checks_length_before_reading_body() -> None:
    """An oversized prefix fails at once, without waiting for (or buffering) the body."""

    async def main() -> None:
        _, b = pair(max_frame_bytes=1000)
        reader = asyncio.StreamReader()
        reader.feed_data((10**9).to_bytes(4, "big"))  # no body, no EOF
        ch = SecureChannel(reader, None, b)  # type: ignore[arg-type]
        with pytest.raises(FrameError, match="exceeds limit"):
            await asyncio.wait_for(ch.recv(), 1.0)

        a, b = pair()
        reader = asyncio.StreamReader()
        frame = a.seal(20, {"k": 1})
        reader.feed_data(frame + frame[:7])
        reader.feed_eof()
        ch = SecureChannel(reader, None, b)  # type: ignore[arg-type]
        assert await ch.recv() == (20, {"k": 1})
        with pytest.raises(FrameError, match="truncated"):
            await ch.recv()

        reader = asyncio.StreamReader()
        reader.feed_eof()
        ch = SecureChannel(reader, None, b)  # type: ignore[arg-type]
        with pytest.raises(ChannelClosed):
            await ch.recv()

    asyncio.run(main())
