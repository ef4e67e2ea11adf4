"""Every reason tag a node answers with, and how: the one table.

A refusal or failure names a stable ``reason`` tag (``{"error": {"reason": tag, ...}}`` on
REST, ``data.reason`` on JSON-RPC). The node raises tags without knowing HTTP
(``Rejected``, ``ServiceError``, ``TxFailed``, liveness problems, token errors); the API
answers each with the HTTP status and JSON-RPC error code this table gives it, wherever
it was raised (``ApiError(reason, message)`` takes its status from here).

Invariants (tests/test_reasons.py):

* every reason literal raised in node/, api/ and protocol/ is in the table, and every
  entry's status is an HTTP error status and its code one of :mod:`yilian.api.rpc_errors`;
* one tag, one status, one code: a node too busy to take work now (``mempool_full``,
  ``sender_limit``, ``waiting_full``, a stalled chain) is 503 on every route, so a
  client retries it the same way everywhere;
* ``rpc`` is the code of a ``/rpc``, ``/`` or ``/ws`` answer for the tag, None where
  JSON-RPC never answers it (a REST-only refusal);
* docs/errors.md shows exactly this table.

A 202 answer (accepted, not committed yet) also names why it did not wait (``known``,
``nonce_gap``, ``commit_timeout``): it is not an error, so not this table's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from yilian.api.rpc_errors import (
    InternalError,
    InvalidRequest,
    LimitExceeded,
    ParseError,
    RpcError,
    ServerError,
    Unauthorized,
)

__all__ = ["GROUPS", "REASONS", "RPC_ERRORS", "Reason", "http_status", "rpc_error"]


@dataclass(frozen=True)
class Reason:
    """What one tag answers: HTTP ``http``, JSON-RPC ``rpc`` (None: REST only), and why."""

    http: int
    rpc: int | None
    meaning: str


def _rows(text: str) -> dict[str, Reason]:
    """A group's rows, one a line: ``tag  HTTP status  JSON-RPC code (- for none)  meaning``."""
    out: dict[str, Reason] = {}
    for line in text.strip().splitlines():
        tag, http, rpc, meaning = line.split(None, 3)
        out[tag] = Reason(int(http), None if rpc == "-" else int(rpc), meaning)
    return out


# JSON-RPC codes: -32000 is eth_sendRawTransaction's refusal (as geth); -40100 a missing or
# bad bearer token (as Besu); the others as JSON-RPC 2.0 (see api/rpc_errors.py).
# tag                  HTTP JSON-RPC meaning

ADMISSION = _rows("""
oversized               422 -32000 the raw transaction is over the node's size limit
invalid_encoding        422 -32000 not a valid signed transaction encoding
unsupported_type        422 -32000 a transaction type this network does not take (blobs)
unprotected             422 -32000 a legacy transaction without EIP-155 replay protection
wrong_chain             422 -32000 signed for another chain id
invalid_signature       422 -32000 the signature is invalid or not canonical
invalid_transaction     422 -32000 a field breaks a transaction rule (fee caps, EIP-7702)
intrinsic_gas           422 -32000 the gas limit is below the transaction's intrinsic cost
gas_limit               422 -32000 the gas limit is over the network's per-transaction cap
nonce_too_high          422 -32000 the nonce is too far ahead of the sender's next one
nonce_too_low           422 -32000 the nonce was already used by a committed transaction
initcode_size           422 -32000 contract creation with initcode over the EIP-3860 limit
sender_not_eoa          422 -32000 the sender is a contract
insufficient_funds      422 -32000 the sender cannot pay gas times fee cap plus value
underpriced_replacement 422 -32000 a replacement with lower fee caps than the pending one
unauthorised            403 -32000 the sender is no member's registered account nor an operator
suspended               403 -32000 the sender's member is suspended (it may only revoke grants)
known                   409 -32000 the node already holds this transaction (pending or committed)
mempool_full            503 -32000 the mempool is full: retry after a few blocks
sender_limit            503 -32000 the sender has the most pending transactions the pool keeps
""")

DOMAIN_CALLS = _rows("""
bad_call                422 -32000 not a call of the domain contract the route or node expects
role                    403 -32000 the sender's member role may not make this call
not_owner               403 -32000 the granter does not own what the grant would cover
bad_record_id           422 -32000 the record id is outside the publishing center's namespace
digest_mismatch         422 -32000 the record's digest is not its ciphertext's
""")

WAITING = _rows("""
reverted                409 -      committed but reverted (the message gives the contract's reason)
dropped                 422 -      admitted, then replaced or dropped before it committed
commit_timeout          504 -      a center operation did not commit in time; it is still pending
no_quorum               503 -      chain stalled: connected validators hold at most 2/3 of the power
no_commit               503 -      chain stalled: ready transactions have waited with no block
too_many_waiting        429 -      this caller (account or address) has its most calls waiting
waiting_full            503 -      this node has its most calls waiting for a commit: retry soon
""")

SIGNED_REQUESTS = _rows("""
unauthenticated         401 -40100 no request signature (REST) or no bearer token (JSON-RPC)
bad_auth                401 -      a signature header is malformed, or the expiry too far ahead
expired                 401 -      the request signature has expired
bad_signature           401 -      the signature is invalid or not the named account's
wrong_audience          401 -      the request was signed for another node
replayed                401 -      this signed request was already used
bad_challenge           401 -      the token challenge is unknown, used, expired or not the caller's
not_member              403 -      the account is not an account of an active member
no_domain               503 -      this network's genesis has no domain contracts
""")

TOKENS = _rows("""
invalid_token           401 -40100 the bearer token is malformed or not this node's
token_expired           401 -40100 the bearer token has expired
membership_changed      401 -40100 the token's account or role changed since it was issued
""")

RECORD_KEYS = _rows("""
no_key_service          503 -      this node holds no center account: use the center's own node
not_registered          503 -      this node's center account is not a registered member
not_center_staff        403 -      the caller is not an account of this node's center
not_provider            403 -      only the providing center may remove the record
invalid_record          422 -      the record breaks the data standard (fields names them)
record_too_large        422 -      the record does not fit in one on-chain record
owner_not_member        422 -      the record's owner is not an active member
version_conflict        409 -      the version is not the next one (or not committed)
client_id_reused        409 -      this client id was published with other content
record_not_found        404 -      no such record on chain
version_not_found       404 -      the record has no such version
record_removed          410 -      the version is a removal (tombstone)
request_id_used         409 -      the read's request id was used for another read
request_id_expired      409 -      the read with this request id is too old to serve again
too_many_items          422 -      a key request names more records than one request may
duplicate_item          422 -      a key request names the same record version twice
mixed_custodians        422 -      a key request names records of several custodians
tampered                409 -      the stored ciphertext does not match its on-chain digest
bad_enc_key             422 -      the caller's registered encryption key is unusable
wrong_enc_key           409 -      the key request holds another key than the registered one
not_custodian           409 -      forwarded to a node that is not the record's custodian
custodian_unavailable   503 -      the record's custodian node cannot be reached
bad_custodian_answer    502 -      the custodian answered other than a key-service answer
receipt_missing         500 -      the access receipt committed but is not indexed
index_missing           500 -      the version's publication is not indexed
no_custodian_key        500 -      no data key was wrapped for the custodian
rewrap_failed           500 -      the data key could not be re-wrapped for the caller
""")

GRANT_READS = _rows("""
grant_not_found         404 -      no such grant
grant_revoked           403 -      the owner revoked the grant
grant_expired           403 -      the grant has expired
grant_exhausted         403 -      the grant has no reads left
not_covered             403 -      the grant does not cover this record
not_grantee             403 -      the caller is not the grant's grantee
grantee_inactive        403 -      the grantee's membership is suspended
owner_inactive          403 -      the grant owner's membership is suspended
refused                 403 -      the chain refused the read for a reason it did not name
no_event                500 -      the grant committed without a Granted event
""")

MEMBERSHIP = _rows("""
member_not_found        404 -      no such member, or the account belongs to none
not_party               403 -      the caller's member is party of none of what it asks for
""")

REQUEST_SHAPE = _rows("""
bad_request             422 -      a path or query parameter is malformed
invalid_credit_code     422 -      a credit code in the path or query is not a valid one
invalid_request         422 -32600 the request does not match the API (fields names them)
bad_json                400 -32700 the body is not strict JSON (or nested too deep)
too_large               413 -32005 the body is over the node's size limit
unsupported_media_type  415 -32600 the body is not application/json
forbidden               403 -32600 the web framework refused access
not_found               404 -32600 no such path
method_not_allowed      405 -32600 the path does not take this HTTP method
internal                500 -32603 a bug: the node logged it
""")

GROUPS: tuple[tuple[str, dict[str, Reason]], ...] = (
    ("Transaction admission (`node/admission.py`, `node/mempool.py`)", ADMISSION),
    ("Domain calls (`node/domain.py`)", DOMAIN_CALLS),
    ("Waiting for a commit (`node/center_account.py`, `node/liveness.py`, "
     "`api/waiting.py`)", WAITING),
    ("Signed requests (`protocol/signed_request.py`, `api/auth.py`)", SIGNED_REQUESTS),
    ("JSON-RPC tokens (`node/rpc_tokens.py`, `api/rpc_auth.py`)", TOKENS),
    ("Records and keys (`node/key_service.py`, `node/key_batches.py`, "
     "`api/routes/records.py`, `api/routes/keys.py`)", RECORD_KEYS),
    ("Grants (`node/domain.py` GRANT_STATUS, `api/routes/grants.py`)", GRANT_READS),
    ("Members and parties (`api/routes/members.py`, `api/privacy.py`)", MEMBERSHIP),
    ("Request shape (`api/errors.py`, `api/body_guard.py`, `api/domain_format.py`)", REQUEST_SHAPE),
)

REASONS: dict[str, Reason] = {tag: reason for _, group in GROUPS
                              for tag, reason in group.items()}

RPC_ERRORS: dict[int, type[RpcError]] = {
    cls.code: cls for cls in (ServerError, Unauthorized, InvalidRequest, ParseError,
                              LimitExceeded, InternalError)}


def http_status(reason: str) -> int:
    """The HTTP status every answer with ``reason`` has."""
    try:
        return REASONS[reason].http
    except KeyError:
        raise KeyError(f"reason {reason!r} is not in api/reasons.py's table: add it") from None


def rpc_error(reason: str, message: str) -> RpcError:
    """The JSON-RPC error for ``reason``: the table's code, ``data.reason`` the tag."""
    code = REASONS[reason].rpc
    if code is None:
        raise KeyError(f"reason {reason!r} is not a JSON-RPC answer (api/reasons.py)")
    return RPC_ERRORS[code](message, data={"reason": reason})
