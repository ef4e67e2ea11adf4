"""Ed25519 identities for the p2p tests (PyNaCl), independent of the node's signature suites."""

from __future__ import annotations

from nacl.signing import SigningKey, VerifyKey

from yilian.node.p2p.handshake import Identity


def ed25519_identity() -> Identity:
    sk = SigningKey.generate()
    return Identity(bytes(sk.verify_key), lambda m: sk.sign(m).signature)


def ed25519_verify(pk: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        VerifyKey(pk).verify(msg, sig)
        return True
    except Exception:
        return False
