"""Signed REST requests: a caller proves it holds a chain key, once per request.

Both the SDK (signing) and the node (verifying) use this module, so the two can never
disagree on the bytes that are signed. The scheme:

* headers ``X-Yilian-Account`` (0x address), ``X-Yilian-Nonce`` (32 hex digits, 128 random
  bits), ``X-Yilian-Expires`` (unix seconds) and ``X-Yilian-Signature`` (0x, 65 bytes);
* the signature is an EIP-191 ``personal_sign`` by the account's secp256k1 key over
  :func:`canonical_request`: a fixed tag, the chain id, method, path with query, expiry,
  nonce, account and the SHA-256 of the body. A signature therefore covers exactly one
  request to one network and is useless once it expires;
* the verifier refuses an expiry in the past or more than :data:`MAX_LIFETIME_S` ahead,
  and (with its own store) a nonce it has seen before: see ``yilian.api.auth``.

Unlike a shared-secret token (hash(system, time, MD5(data), secret) accepted for ten
minutes with no nonce, as one deployed system did), nothing here can be replayed, and no
secret leaves the caller.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

__all__ = [
    "ACCOUNT_HEADER",
    "EXPIRES_HEADER",
    "MAX_LIFETIME_S",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "RequestAuthError",
    "SignedHeaders",
    "canonical_request",
    "recover_signer",
    "sign_request",
]

ACCOUNT_HEADER = "X-Yilian-Account"
NONCE_HEADER = "X-Yilian-Nonce"
EXPIRES_HEADER = "X-Yilian-Expires"
SIGNATURE_HEADER = "X-Yilian-Signature"
MAX_LIFETIME_S = 300
TAG = "yilian-request-v1"
# fullmatch only: "$" would also accept a trailing newline
_NONCE_RE = re.compile(r"[0-9a-f]{32}")
_ADDR_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_SIG_RE = re.compile(r"0x[0-9a-fA-F]{130}")
_EXPIRES_RE = re.compile(r"[0-9]{1,12}")  # ASCII digits only (str.isdigit accepts "²")


class RequestAuthError(ValueError):
    """A request's signature headers are missing, malformed, expired or do not verify."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SignedHeaders:
    account: str
    nonce: str
    expires: int
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {ACCOUNT_HEADER: self.account, NONCE_HEADER: self.nonce,
                EXPIRES_HEADER: str(self.expires), SIGNATURE_HEADER: self.signature}


def canonical_request(*, chain_id: int, method: str, path: str, expires: int, nonce: str,
                      account: str, body: bytes) -> bytes:
    """The exact bytes a request signature covers (one field per line)."""
    lines = [TAG, str(chain_id), method.upper(), path, str(expires), nonce, account.lower(),
             hashlib.sha256(body).hexdigest()]
    return "\n".join(lines).encode()


def sign_request(private_key: str | bytes, *, chain_id: int, method: str, path: str,
                 body: bytes = b"", lifetime_s: int = 60, now: float | None = None
                 ) -> SignedHeaders:
    """Headers authenticating one request (a fresh random nonce every call)."""
    if not 0 < lifetime_s <= MAX_LIFETIME_S:
        raise ValueError(f"lifetime_s must be in 1..{MAX_LIFETIME_S}")
    acct = Account.from_key(private_key)
    expires = int(now if now is not None else time.time()) + lifetime_s
    nonce = os.urandom(16).hex()
    message = canonical_request(chain_id=chain_id, method=method, path=path, expires=expires,
                                nonce=nonce, account=acct.address, body=body)
    signed = acct.sign_message(encode_defunct(primitive=message))
    return SignedHeaders(acct.address, nonce, expires, "0x" + bytes(signed.signature).hex())


def recover_signer(headers: dict[str, str], *, chain_id: int, method: str, path: str,
                   body: bytes, now: float | None = None) -> tuple[str, str, int]:
    """Check the headers; return (checksum account, nonce, expires). Raises RequestAuthError.

    Nonce freshness is the caller's job (it needs storage); everything else is checked here.
    """
    account = headers.get(ACCOUNT_HEADER)
    nonce = headers.get(NONCE_HEADER)
    expires_s = headers.get(EXPIRES_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not (account and nonce and expires_s and signature):
        raise RequestAuthError(
            "unauthenticated",
            f"this request must be signed: send {ACCOUNT_HEADER}, {NONCE_HEADER}, "
            f"{EXPIRES_HEADER} and {SIGNATURE_HEADER} (the SDK does this for you)")
    if not _ADDR_RE.fullmatch(account):
        raise RequestAuthError("bad_auth", f"{ACCOUNT_HEADER} must be a 0x address")
    if not _NONCE_RE.fullmatch(nonce):
        raise RequestAuthError("bad_auth", f"{NONCE_HEADER} must be 32 lowercase hex digits")
    if not _EXPIRES_RE.fullmatch(expires_s):
        raise RequestAuthError("bad_auth", f"{EXPIRES_HEADER} must be unix seconds")
    if not _SIG_RE.fullmatch(signature):
        raise RequestAuthError("bad_auth", f"{SIGNATURE_HEADER} must be 0x + 65 bytes hex")
    expires = int(expires_s)
    current = now if now is not None else time.time()
    if expires <= current:
        raise RequestAuthError("expired", "the request signature has expired; sign it again")
    if expires > current + MAX_LIFETIME_S + 5:
        raise RequestAuthError(
            "bad_auth", f"the request expiry is more than {MAX_LIFETIME_S} s ahead; "
            "sign with a shorter lifetime (or fix the caller's clock)")
    message = canonical_request(chain_id=chain_id, method=method, path=path, expires=expires,
                                nonce=nonce, account=account, body=body)
    try:
        signer = Account.recover_message(encode_defunct(primitive=message),
                                         signature=bytes.fromhex(signature[2:]))
    except Exception as exc:  # eth_keys raises several types for a malformed signature
        raise RequestAuthError("bad_signature", f"the request signature is invalid: {exc}"
                               ) from None
    if signer.lower() != account.lower():
        raise RequestAuthError(
            "bad_signature", "the request signature was not made by "
            f"{to_checksum_address(account)} over this method, path and body")
    return to_checksum_address(account), nonce, expires
