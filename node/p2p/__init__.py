"""Authenticated, encrypted peer-to-peer transport between consortium members.

* :mod:`yilian.node.p2p.handshake` -- mutual authentication and key agreement
  (X25519 ephemerals, identity signatures injected so any suite works).
* :mod:`yilian.node.p2p.frames` -- the length-prefixed ChaCha20-Poly1305 frame
  channel carrying msgpack ``[type, body]`` messages, with size limits.
* :mod:`yilian.node.p2p.peers` -- :class:`PeerManager`: listen, dial with
  backoff, one connection per member identity, broadcast/send/on_message.
"""

from yilian.node.p2p.frames import (
    FIRST_APP_TYPE,
    MAX_MSG_TYPE,
    ChannelClosed,
    DecodeLimits,
    FrameError,
    SecureChannel,
)
from yilian.node.p2p.handshake import (
    HandshakeConfig,
    HandshakeError,
    HandshakeResult,
    Identity,
    NetworkId,
    initiate,
    respond,
)
from yilian.node.p2p.peers import PeerAddress, PeerInfo, PeerManager

__all__ = [
    "FIRST_APP_TYPE",
    "MAX_MSG_TYPE",
    "ChannelClosed",
    "DecodeLimits",
    "FrameError",
    "HandshakeConfig",
    "HandshakeError",
    "HandshakeResult",
    "Identity",
    "NetworkId",
    "PeerAddress",
    "PeerInfo",
    "PeerManager",
    "SecureChannel",
    "initiate",
    "respond",
]
