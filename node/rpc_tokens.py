"""Bearer tokens for JSON-RPC and WebSocket access, and who needs one.

Modelled on Besu's JSON-RPC authentication: a token is a JWT whose ``permissions`` claim
lists the methods it may call as ``namespace:method`` strings (``net:*``,
``eth:blockNumber``, ``*:*``). yilian signs its tokens with HS256 and a per-node secret
(``<home>/rpc-token.key``, 32 random bytes, mode 0600, created on first start), so:

* a token is good only at the node that issued it (another node's secret does not verify
  it), and only until its ``exp`` (default one hour);
* the node issues a token to a member account that signs a challenge (``/v1/auth/token``,
  see :mod:`yilian.protocol.rpc_login`), or the operator mints one from the secret file
  (``yilian node token``);
* replacing the secret file and restarting the node revokes every token it issued.

Whether a token is needed at all is :func:`auth_required`: yes unless every address the
node listens on is loopback (a local development network stays open), or the config's
``rpc_auth.required`` says otherwise.

Invariants: :meth:`TokenKey.verify` returns claims only for a token this key signed, not
expired, for this audience and issuer, whose role is known and whose permissions are
well-formed strings; anything else raises :class:`TokenError` with a reason and a message
that says what to do.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from yilian.contracts.addresses import ROLE_NAMES
from yilian.node.config import NodeConfig

AUDIENCE = "yilian-rpc"
ALGORITHM = "HS256"
SECRET_BYTES = 32
OPERATOR_MAX_TTL_S = 30 * 24 * 3600  # an operator-minted token lives at most 30 days

# Read-only chain methods that reveal no transaction contents, plus sending transactions.
# eth_call/eth_estimateGas are listed but limited for these roles to the public member
# registry and to plain transfers, and transaction/receipt/log methods are filtered to
# what the caller is a party of: see yilian.api.rpc_permissions.
MEMBER_PERMISSIONS: tuple[str, ...] = (
    "web3:*", "net:*",
    "eth:chainId", "eth:syncing", "eth:accounts", "eth:coinbase", "eth:mining",
    "eth:hashrate", "eth:gasPrice", "eth:maxPriorityFeePerGas", "eth:blobBaseFee",
    "eth:feeHistory", "eth:blockNumber", "eth:getBalance", "eth:getTransactionCount",
    "eth:getCode", "eth:getBlockByNumber", "eth:getBlockByHash",
    "eth:getBlockTransactionCountByNumber", "eth:getBlockTransactionCountByHash",
    "eth:getUncleCountByBlockNumber", "eth:getUncleCountByBlockHash",
    "eth:getTransactionByHash", "eth:getTransactionReceipt",
    "eth:getTransactionByBlockNumberAndIndex", "eth:getTransactionByBlockHashAndIndex",
    "eth:sendRawTransaction", "eth:call", "eth:estimateGas",
    "eth:getLogs", "eth:newFilter", "eth:newBlockFilter", "eth:getFilterChanges",
    "eth:getFilterLogs", "eth:uninstallFilter", "eth:subscribe", "eth:unsubscribe",
    "yilian:getCommitCertificate",
)
# Centers hold the whole chain on their own nodes and auditors must see every event:
# everything, unfiltered.
FULL_VIEW_ROLES = frozenset({"center", "auditor"})
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "center": ("*:*",), "auditor": ("*:*",),
    "enterprise": MEMBER_PERMISSIONS, "financial": MEMBER_PERMISSIONS,
    "admin": MEMBER_PERMISSIONS,
}
assert set(ROLE_PERMISSIONS) == set(ROLE_NAMES.values())
_PERMISSION_RE = re.compile(r"(\*|[a-z0-9]+):(\*|[A-Za-z0-9_]+)")


class TokenError(ValueError):
    """A bearer token is missing, malformed, expired, forged or from another node."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says about its holder."""

    subject: str  # checksum account, or "operator:<label>" for an operator-minted token
    member: str  # credit code of the member ("" for an operator token without one)
    role: str  # one of ROLE_PERMISSIONS
    permissions: tuple[str, ...]
    issued_at: int
    expires_at: int
    token_id: str

    @property
    def is_operator(self) -> bool:
        return self.subject.startswith("operator:")

    @property
    def full_view(self) -> bool:
        """Sees every log and transaction (centers, auditors); others see their own."""
        return self.role in FULL_VIEW_ROLES

    def permits(self, method: str) -> bool:
        """Besu's rule: ``*:*``, ``ns:*`` or ``ns:name`` for the method ``ns_name``."""
        namespace, _, name = method.partition("_")
        return any(p in ("*:*", f"{namespace}:*", f"{namespace}:{name}")
                   for p in self.permissions)


def permissions_for(role: str) -> tuple[str, ...]:
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"unknown role {role!r}; use one of {sorted(ROLE_PERMISSIONS)}")
    return ROLE_PERMISSIONS[role]


class TokenKey:
    """This node's token secret: issues and verifies its tokens."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {SECRET_BYTES} bytes")
        self._secret = secret
        # Public: names the key (and so the node) in challenges, tokens and errors.
        self.key_id = hashlib.sha256(b"yilian-rpc-key-id\n" + secret).hexdigest()[:16]

    @property
    def issuer(self) -> str:
        return f"yilian-node:{self.key_id}"

    @classmethod
    def load_or_create(cls, path: Path) -> TokenKey:
        """The secret in ``path`` (hex), created 0600 on first use; refuses a readable one."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(SECRET_BYTES) + "\n")
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise TokenError("bad_secret", f"{path} is readable by others (mode "
                             f"{stat.S_IMODE(mode):o}); run `chmod 600 {path}`")
        try:
            secret = bytes.fromhex(path.read_text().strip())
        except ValueError:
            raise TokenError("bad_secret", f"{path} is not hex; delete it and restart the "
                             "node to make a new one (this revokes every token)") from None
        return cls(secret)

    def issue(self, *, subject: str, member: str, role: str, ttl_s: int,
              now: float | None = None) -> tuple[str, TokenClaims]:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        issued = int(now if now is not None else time.time())
        claims = TokenClaims(subject, member, role, permissions_for(role), issued,
                             issued + ttl_s, secrets.token_hex(8))
        payload = {"iss": self.issuer, "aud": AUDIENCE, "sub": subject, "member": member,
                   "role": role, "permissions": list(claims.permissions), "iat": issued,
                   "exp": claims.expires_at, "jti": claims.token_id}
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def verify(self, token: str, now: float | None = None) -> TokenClaims:
        current = now if now is not None else time.time()
        try:
            doc: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], audience=AUDIENCE,
                issuer=self.issuer, options={"require": ["exp", "iat", "sub", "iss", "aud"],
                                             "verify_exp": False})
        except jwt.InvalidSignatureError:
            raise TokenError("invalid_token", "the token was not issued by this node (its "
                             "signature does not verify); get a token from this node's "
                             "/v1/auth/token") from None
        except jwt.PyJWTError as exc:
            raise TokenError("invalid_token", f"the token is invalid ({exc}); get a new one "
                             "from /v1/auth/token") from None
        exp = doc.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= current:
            raise TokenError("token_expired", "the token has expired; get a new one from "
                             "/v1/auth/token")
        role, perms = doc.get("role"), doc.get("permissions")
        if role not in ROLE_PERMISSIONS:
            raise TokenError("invalid_token", f"the token names an unknown role {role!r}")
        if not (isinstance(perms, list) and all(
                isinstance(p, str) and _PERMISSION_RE.fullmatch(p) for p in perms)):
            raise TokenError("invalid_token", "the token's permissions are malformed")
        member, sub, jti = doc.get("member", ""), doc["sub"], doc.get("jti", "")
        if not (isinstance(member, str) and isinstance(sub, str) and isinstance(jti, str)):
            raise TokenError("invalid_token", "the token's sub, member or jti is not text")
        return TokenClaims(sub, member, str(role), tuple(perms), int(doc["iat"]), exp, jti)


def listens_on_loopback_only(host: str) -> bool:
    """True when every address ``host`` binds is a loopback address (127/8, ::1).

    ``0.0.0.0``/``::`` (every interface), other addresses, and names that resolve to any
    non-loopback address or do not resolve are not loopback.
    """
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


def auth_required(config: NodeConfig) -> bool:
    """Whether JSON-RPC and WebSocket callers need a token at this node."""
    if config.rpc_auth.required is not None:
        return config.rpc_auth.required
    return not listens_on_loopback_only(config.host)


def access_summary(config: NodeConfig) -> str:
    """One line for operators: open or token-protected, and why."""
    if auth_required(config):
        why = ("forced on by rpc_auth.required" if config.rpc_auth.required
               else f"listening on {config.host}, beyond loopback")
        return (f"JSON-RPC/WebSocket need a bearer token ({why}); see docs/rpc-auth.md")
    if config.rpc_auth.required is False and not listens_on_loopback_only(config.host):
        return (f"JSON-RPC open to anyone who can reach {config.host}: rpc_auth.required is "
                "false (NOT for a shared network)")
    return "JSON-RPC open: listening on loopback only"


def secret_path(config: NodeConfig, home: Path) -> Path:
    path = Path(config.rpc_auth.secret_file)
    return path if path.is_absolute() else home / path
