"""The challenge a member signs to obtain a JSON-RPC bearer token from one node.

Both the SDK (signing) and the node (verifying) build the signed text here, so they can
never disagree on it. The flow (docs/rpc-auth.md):

1. ``POST /v1/auth/challenge`` with ``{"account": "0x.."}`` answers a fresh random
   ``nonce`` (128 bits), the node's ``node`` key id, the ``chain_id`` and ``expires``;
2. the caller signs :func:`login_message` (EIP-191 ``personal_sign`` by its chain key);
3. ``POST /v1/auth/token`` with ``{"account", "nonce", "signature", "ttl_s"}`` answers a
   token to send as ``Authorization: Bearer <token>``.

The text names the chain, the node and the token lifetime asked for, so a signature is
good for one token from one node, once (the node forgets a nonce when it is used or
expires).
"""

from __future__ import annotations

import re

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

TAG = "yilian-rpc-login-v1"
_NONCE_RE = re.compile(r"[0-9a-f]{32}")
_NODE_RE = re.compile(r"[0-9a-f]{16}")


class LoginError(ValueError):
    """A login signature is malformed or was not made by the account it names."""


def login_message(*, chain_id: int, node: str, nonce: str, account: str, ttl_s: int
                  ) -> bytes:
    """The exact bytes signed to log in (one field per line)."""
    if not _NONCE_RE.fullmatch(nonce):
        raise LoginError("nonce must be 32 lowercase hex digits (from /v1/auth/challenge)")
    if not _NODE_RE.fullmatch(node):
        raise LoginError("node must be the 16 hex digit key id from /v1/auth/challenge")
    return "\n".join([TAG, str(chain_id), node, nonce, account.lower(), str(ttl_s)]).encode()


def sign_login(private_key: str | bytes, *, chain_id: int, node: str, nonce: str,
               ttl_s: int) -> str:
    """The 0x signature over the login text, by ``private_key``'s account."""
    acct = Account.from_key(private_key)
    message = login_message(chain_id=chain_id, node=node, nonce=nonce, account=acct.address,
                            ttl_s=ttl_s)
    return "0x" + bytes(acct.sign_message(encode_defunct(primitive=message)).signature).hex()


def recover_login(signature: str, *, chain_id: int, node: str, nonce: str, account: str,
                  ttl_s: int) -> str:
    """Check that ``account`` signed this login; return it checksummed. Raises LoginError."""
    message = login_message(chain_id=chain_id, node=node, nonce=nonce, account=account,
                            ttl_s=ttl_s)
    if not re.fullmatch(r"0x[0-9a-fA-F]{130}", signature):
        raise LoginError("signature must be 0x followed by 65 bytes of hex")
    try:
        signer = Account.recover_message(encode_defunct(primitive=message),
                                         signature=bytes.fromhex(signature[2:]))
    except Exception as exc:  # eth_keys raises several types for a malformed signature
        raise LoginError(f"the signature is invalid: {exc}") from None
    if signer.lower() != account.lower():
        raise LoginError(f"the signature was not made by {to_checksum_address(account)} over "
                         "this challenge, chain, node and lifetime")
    return to_checksum_address(account)
