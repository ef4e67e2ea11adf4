"""Signed REST requests: a caller proves it holds a chain key, once per request.

Both the SDK (signing) and the node (verifying) use this module, so the two can never
disagree on the bytes that are signed. The scheme:

* headers ``X-Yilian-Account`` (0x address), ``X-Yilian-Audience`` (the node that is to
  serve the request), ``X-Yilian-Nonce`` (32 hex digits, 128 random bits),
  ``X-Yilian-Expires`` (unix seconds) and ``X-Yilian-Signature`` (0x, 65 bytes);
* the signature is an EIP-191 ``personal_sign`` by the account's secp256k1 key over
  :func:`canonical_request`: a fixed tag, the chain id, the audience, method, path with
  query, expiry, nonce, account and the SHA-256 of the body. A signature therefore covers
  exactly one request to one node of one network and is useless once it expires;
* the verifier refuses an expiry in the past or more than :data:`MAX_LIFETIME_S` ahead,
  an audience that is not the node serving the request (:func:`check_audience`; each node
  keeps its own nonces, so without the audience a request could be replayed once at every
  other node), and (with its own store) a nonce it has seen before: see
  ``yilian.api.auth``.

The audience is the credit code of the center whose node serves the request (a node
without a center account uses ``node:<its name>``); a node shows its own under
``audience`` in ``/healthz``. A key request is served by the record's custodian, so it
names the custodian even when sent to another node, which forwards it unchanged.

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
    "AUDIENCE_HEADER",
    "EXPIRES_HEADER",
    "MAX_LIFETIME_S",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "RequestAuthError",
    "SignedBy",
    "SignedHeaders",
    "canonical_request",
    "check_audience",
    "recover_signer",
    "sign_request",
]

ACCOUNT_HEADER = "X-Yilian-Account"
AUDIENCE_HEADER = "X-Yilian-Audience"
NONCE_HEADER = "X-Yilian-Nonce"
EXPIRES_HEADER = "X-Yilian-Expires"
SIGNATURE_HEADER = "X-Yilian-Signature"
MAX_LIFETIME_S = 300
TAG = "yilian-request-v2"
# fullmatch only: "$" would also accept a trailing newline
_NONCE_RE = re.compile(r"[0-9a-f]{32}")
_ADDR_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_SIG_RE = re.compile(r"0x[0-9a-fA-F]{130}")
_EXPIRES_RE = re.compile(r"[0-9]{1,12}")  # ASCII digits only (str.isdigit accepts "²")
_AUDIENCE_RE = re.compile(r"[0-9A-Za-z:._-]{1,64}")


class RequestAuthError(ValueError):
    """A request's signature headers are missing, malformed, expired or do not verify."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SignedHeaders:
    account: str
    audience: str
    nonce: str
    expires: int
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {ACCOUNT_HEADER: self.account, AUDIENCE_HEADER: self.audience,
                NONCE_HEADER: self.nonce, EXPIRES_HEADER: str(self.expires),
                SIGNATURE_HEADER: self.signature}


@dataclass(frozen=True)
class SignedBy:
    """What a verified signature proves: who signed, for which node, once, until when."""

    account: str  # checksum address
    audience: str
    nonce: str
    expires: int


def canonical_request(*, chain_id: int, audience: str, method: str, path: str, expires: int,
                      nonce: str, account: str, body: bytes) -> bytes:
    """The exact bytes a request signature covers (one field per line)."""
    lines = [TAG, str(chain_id), audience, method.upper(), path, str(expires), nonce,
             account.lower(), hashlib.sha256(body).hexdigest()]
    return "\n".join(lines).encode()


def sign_request(private_key: str | bytes, *, chain_id: int, audience: str, method: str,
                 path: str, body: bytes = b"", lifetime_s: int = 60, now: float | None = None
                 ) -> SignedHeaders:
    """Headers authenticating one request to the node ``audience`` (a fresh random nonce
    every call)."""
    if not 0 < lifetime_s <= MAX_LIFETIME_S:
        raise ValueError(f"lifetime_s must be in 1..{MAX_LIFETIME_S}")
    if not _AUDIENCE_RE.fullmatch(audience):
        raise ValueError(f"audience must match {_AUDIENCE_RE.pattern}, got {audience!r}")
    acct = Account.from_key(private_key)
    expires = int(now if now is not None else time.time()) + lifetime_s
    nonce = os.urandom(16).hex()
    message = canonical_request(chain_id=chain_id, audience=audience, method=method,
                                path=path, expires=expires, nonce=nonce,
                                account=acct.address, body=body)
    signed = acct.sign_message(encode_defunct(primitive=message))
    return SignedHeaders(acct.address, audience, nonce, expires,
                         "0x" + bytes(signed.signature).hex())


def check_audience(audience: str, expected: str) -> None:
    """Refuse a request signed for ``audience`` when node ``expected`` serves it
    (RequestAuthError)."""
    if audience != expected:
        raise RequestAuthError(
            "wrong_audience", f"this request was signed for {audience!r}, but it is "
            f"served by {expected!r}: sign each request for the node that serves it (see "
            "'audience' in that node's /healthz; a key request names the record's "
            "custodian). The SDK does this for you")


def recover_signer(headers: dict[str, str], *, chain_id: int, method: str, path: str,
                   body: bytes, now: float | None = None) -> SignedBy:
    """Check the headers and the signature; return who signed what. Raises
    RequestAuthError.

    Nonce freshness and the audience (:func:`check_audience`) are the caller's job (it
    needs storage and knows which node serves the request); everything else is checked
    here.
    """
    account = headers.get(ACCOUNT_HEADER)
    audience = headers.get(AUDIENCE_HEADER)
    nonce = headers.get(NONCE_HEADER)
    expires_s = headers.get(EXPIRES_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not (account and audience and nonce and expires_s and signature):
        raise RequestAuthError(
            "unauthenticated",
            f"this request must be signed: send {ACCOUNT_HEADER}, {AUDIENCE_HEADER}, "
            f"{NONCE_HEADER}, {EXPIRES_HEADER} and {SIGNATURE_HEADER} (the SDK does this "
            "for you)")
    if not _ADDR_RE.fullmatch(account):
        raise RequestAuthError("bad_auth", f"{ACCOUNT_HEADER} must be a 0x address")
    if not _AUDIENCE_RE.fullmatch(audience):
        raise RequestAuthError("bad_auth", f"{AUDIENCE_HEADER} must match "
                               f"{_AUDIENCE_RE.pattern} (a node's audience from its /healthz)")
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
    message = canonical_request(chain_id=chain_id, audience=audience, method=method,
                                path=path, expires=expires, nonce=nonce, account=account,
                                body=body)
    try:
        signer = Account.recover_message(encode_defunct(primitive=message),
                                         signature=bytes.fromhex(signature[2:]))
    except Exception as exc:  # eth_keys raises several types for a malformed signature
        raise RequestAuthError("bad_signature", f"the request signature is invalid: {exc}"
                               ) from None
    if signer.lower() != account.lower():
        raise RequestAuthError(
            "bad_signature", "the request signature was not made by "
            f"{to_checksum_address(account)} over this audience, method, path and body")
    return SignedBy(to_checksum_address(account), audience, nonce, expires)
