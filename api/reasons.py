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

SERVER = ServerError.code  # -32000: eth_sendRawTransaction's refusals, as geth
UNAUTHORIZED = Unauthorized.code
INVALID = InvalidRequest.code


@dataclass(frozen=True)
class Reason:
    """What one tag answers: HTTP ``http``, JSON-RPC ``rpc`` (None: REST only), and why."""

    http: int
    rpc: int | None
    meaning: str


ADMISSION: dict[str, Reason] = {
    "oversized": Reason(422, SERVER, "the raw transaction is over the node's size limit"),
    "invalid_encoding": Reason(422, SERVER, "not a valid signed transaction encoding"),
    "unsupported_type": Reason(422, SERVER, "a transaction type this network does not take "
                               "(blobs)"),
    "unprotected": Reason(422, SERVER, "a legacy transaction without EIP-155 replay "
                          "protection"),
    "wrong_chain": Reason(422, SERVER, "signed for another chain id"),
    "invalid_signature": Reason(422, SERVER, "the signature is invalid or not canonical"),
    "invalid_transaction": Reason(422, SERVER, "a field breaks a transaction rule (fee caps, "
                                  "EIP-7702 authorisations)"),
    "intrinsic_gas": Reason(422, SERVER, "the gas limit is below what the transaction costs "
                            "before executing"),
    "gas_limit": Reason(422, SERVER, "the gas limit is over the network's per-transaction "
                        "cap"),
    "nonce_too_high": Reason(422, SERVER, "the nonce is too far ahead of the sender's next "
                             "one (or not below 2**64 - 1)"),
    "nonce_too_low": Reason(422, SERVER, "the nonce was already used by a committed "
                            "transaction"),
    "initcode_size": Reason(422, SERVER, "contract creation with initcode over the "
                            "EIP-3860 limit"),
    "sender_not_eoa": Reason(422, SERVER, "the sender is a contract"),
    "insufficient_funds": Reason(422, SERVER, "the sender cannot pay gas times fee cap plus "
                                 "value"),
    "underpriced_replacement": Reason(422, SERVER, "a replacement whose fee caps are below "
                                      "the pending transaction's"),
    "unauthorised": Reason(403, SERVER, "the sender is no registered account of a member nor "
                           "an operator"),
    "suspended": Reason(403, SERVER, "the sender's member is suspended (it may only revoke "
                        "its grants)"),
    "known": Reason(409, SERVER, "the node already holds this transaction (pending or "
                    "committed)"),
    "mempool_full": Reason(503, SERVER, "the mempool is full: retry after a few blocks"),
    "sender_limit": Reason(503, SERVER, "the sender has as many pending transactions as the "
                           "mempool keeps: retry once some commit"),
}

DOMAIN_CALLS: dict[str, Reason] = {
    "bad_call": Reason(422, SERVER, "not a valid transaction call of the domain contract the "
                       "route or node expects"),
    "role": Reason(403, SERVER, "the sender's member role may not make this call"),
    "not_owner": Reason(403, SERVER, "the granter does not own what the grant would cover"),
    "bad_record_id": Reason(422, SERVER, "the record id is outside the publishing center's "
                            "namespace"),
    "digest_mismatch": Reason(422, SERVER, "the record's digest is not its ciphertext's"),
}

WAITING: dict[str, Reason] = {
    "reverted": Reason(409, None, "the transaction committed but reverted (the message "
                       "gives the contract's reason)"),
    "dropped": Reason(422, None, "admitted, then replaced or dropped before it committed"),
    "commit_timeout": Reason(504, None, "a center operation's transaction did not commit in "
                             "time; it is still pending (tx_hash)"),
    "no_quorum": Reason(503, None, "the chain is stalled: connected validators hold at most "
                        "2/3 of the voting power"),
    "no_commit": Reason(503, None, "the chain is stalled: ready transactions have waited "
                        "with no block"),
    "too_many_waiting": Reason(429, None, "this caller (account or client address) already "
                               "has its most calls waiting for a commit"),
    "waiting_full": Reason(503, None, "this node already has its most calls waiting for a "
                           "commit: retry in a few seconds"),
}

SIGNED_REQUESTS: dict[str, Reason] = {
    "unauthenticated": Reason(401, UNAUTHORIZED, "the request is not signed (REST) or has no "
                              "bearer token (JSON-RPC)"),
    "bad_auth": Reason(401, None, "a signature header is malformed, or the expiry too far "
                       "ahead"),
    "expired": Reason(401, None, "the request signature has expired"),
    "bad_signature": Reason(401, None, "the signature is invalid or not the named "
                            "account's"),
    "wrong_audience": Reason(401, None, "the request was signed for another node"),
    "replayed": Reason(401, None, "this signed request was already used"),
    "bad_challenge": Reason(401, None, "the token challenge is unknown, used, expired or "
                            "another account's"),
    "not_member": Reason(403, None, "the account is not an account of an active member"),
    "no_domain": Reason(503, None, "this network's genesis has no domain contracts"),
}

TOKENS: dict[str, Reason] = {
    "invalid_token": Reason(401, UNAUTHORIZED, "the bearer token is malformed or not this "
                            "node's"),
    "token_expired": Reason(401, UNAUTHORIZED, "the bearer token has expired"),
    "membership_changed": Reason(401, UNAUTHORIZED, "the token's account or role changed "
                                 "since it was issued"),
}

RECORD_KEYS: dict[str, Reason] = {
    "no_key_service": Reason(503, None, "this node holds no center account: use the "
                             "center's own node"),
    "not_registered": Reason(503, None, "this node's center account is not a registered "
                             "member"),
    "not_center_staff": Reason(403, None, "the caller is not an account of this node's "
                               "center"),
    "not_provider": Reason(403, None, "only the providing center may remove the record"),
    "invalid_record": Reason(422, None, "the record breaks the data standard (fields names "
                             "them)"),
    "invalid_credit_code": Reason(422, None, "not a valid unified social credit code"),
    "record_too_large": Reason(422, None, "the record does not fit in one on-chain record"),
    "owner_not_member": Reason(422, None, "the record's owner is not an active member"),
    "version_conflict": Reason(409, None, "the version is not the next one (or not "
                               "committed)"),
    "client_id_reused": Reason(409, None, "this client id was published with other "
                               "content"),
    "record_not_found": Reason(404, None, "no such record on chain"),
    "version_not_found": Reason(404, None, "the record has no such version"),
    "record_removed": Reason(410, None, "the version is a removal (tombstone)"),
    "request_id_used": Reason(409, None, "the read's request id was used for another read"),
    "request_id_expired": Reason(409, None, "the read with this request id is too old to "
                                 "serve again"),
    "tampered": Reason(409, None, "the stored ciphertext does not match its on-chain "
                       "digest"),
    "bad_enc_key": Reason(422, None, "the caller's registered encryption key is unusable"),
    "not_custodian": Reason(409, None, "forwarded to a node that is not the record's "
                            "custodian"),
    "custodian_unavailable": Reason(503, None, "the record's custodian node cannot be "
                                    "reached"),
    "bad_custodian_answer": Reason(502, None, "the custodian answered something other than "
                                   "a key-service answer"),
    "receipt_missing": Reason(500, None, "the access receipt committed but is not indexed"),
    "index_missing": Reason(500, None, "the version's publication is not indexed"),
    "no_custodian_key": Reason(500, None, "no data key was wrapped for the custodian"),
    "rewrap_failed": Reason(500, None, "the data key could not be re-wrapped for the "
                            "caller"),
}

GRANT_READS: dict[str, Reason] = {
    "grant_not_found": Reason(404, None, "no such grant"),
    "grant_revoked": Reason(403, None, "the owner revoked the grant"),
    "grant_expired": Reason(403, None, "the grant has expired"),
    "grant_exhausted": Reason(403, None, "the grant has no reads left"),
    "not_covered": Reason(403, None, "the grant does not cover this record"),
    "not_grantee": Reason(403, None, "the caller is not the grant's grantee"),
    "grantee_inactive": Reason(403, None, "the grantee's membership is suspended"),
    "owner_inactive": Reason(403, None, "the grant owner's membership is suspended"),
    "refused": Reason(403, None, "the chain refused the read for a reason it did not name"),
    "no_event": Reason(500, None, "the grant committed without a Granted event"),
}

MEMBERSHIP: dict[str, Reason] = {
    "member_not_found": Reason(404, None, "no such member, or the account belongs to none"),
    "not_party": Reason(403, None, "the caller's member is party of none of what it asks "
                        "for"),
}

REQUEST_SHAPE: dict[str, Reason] = {
    "bad_request": Reason(422, None, "a path or query parameter is malformed"),
    "invalid_request": Reason(422, INVALID, "the request does not match the API (fields "
                              "names them)"),
    "bad_json": Reason(400, ParseError.code, "the body is not strict JSON (or nested too "
                       "deep)"),
    "too_large": Reason(413, LimitExceeded.code, "the body is over the node's size limit"),
    "unsupported_media_type": Reason(415, INVALID, "the body is not application/json"),
    "forbidden": Reason(403, INVALID, "the web framework refused access"),
    "not_found": Reason(404, INVALID, "no such path"),
    "method_not_allowed": Reason(405, INVALID, "the path does not take this HTTP method"),
    "internal": Reason(500, InternalError.code, "a bug: the node logged it"),
}

GROUPS: tuple[tuple[str, dict[str, Reason]], ...] = (
    ("Transaction admission (`node/admission.py`, `node/mempool.py`)", ADMISSION),
    ("Domain calls (`node/domain.py`)", DOMAIN_CALLS),
    ("Waiting for a commit (`node/center_account.py`, `node/liveness.py`, "
     "`api/waiting.py`)", WAITING),
    ("Signed requests (`protocol/signed_request.py`, `api/auth.py`)", SIGNED_REQUESTS),
    ("JSON-RPC tokens (`node/rpc_tokens.py`, `api/rpc_auth.py`)", TOKENS),
    ("Records and keys (`node/key_service.py`, `api/routes/records.py`)", RECORD_KEYS),
    ("Grants (`node/domain.py` GRANT_STATUS, `api/routes/grants.py`)", GRANT_READS),
    ("Members and parties (`api/routes/members.py`, `api/privacy.py`)", MEMBERSHIP),
    ("Request shape (`api/errors.py`, `api/body_guard.py`, `api/domain_format.py`)",
     REQUEST_SHAPE),
)

REASONS: dict[str, Reason] = {tag: reason for _, group in GROUPS for tag, reason in
                              group.items()}

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
