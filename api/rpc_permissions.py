"""What a JSON-RPC caller's token lets it call and see (docs/rpc-auth.md, the table).

The authentication middleware (:mod:`yilian.api.rpc_auth`) puts the caller's
:class:`Access` in a context variable for the request (HTTP) or the connection
(WebSocket); :meth:`yilian.api.rpc.RpcHandler.call` runs every method through
:func:`guarded`. No access in the context means the node is open (loopback only).

For tokens of roles without a full view (enterprise, financial, admin):

* a method outside the token's ``permissions`` is refused (``-40100``);
* logs (``eth_getLogs``, filters, ``logs`` subscriptions) of the Records and Grants
  contracts are returned only when the caller's member is a party of the event
  (:mod:`yilian.api.privacy`); the member registry's and other contracts' logs are public;
* a transaction or receipt is returned only when the caller's member sent it or is a party
  of one of its domain events;
* blocks come with transaction hashes only (``full`` must be false);
* ``eth_call``/``eth_estimateGas`` may target only the public member registry or an
  address without code: any other call could read the Grants contract's state.

Centers and auditors (and operator tokens of those roles) see everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from eth_typing import Address

from yilian.api.privacy import event_parties
from yilian.api.rpc_errors import Unauthorized
from yilian.contracts.abi import AbiError
from yilian.node.domain import GRANTS, MEMBERS, RECORDS
from yilian.node.node_api import NodeAPI
from yilian.node.rpc_tokens import TokenClaims

PRIVATE_CONTRACTS = frozenset({RECORDS, GRANTS})
LOG_METHODS = frozenset({"eth_getLogs", "eth_getFilterLogs", "eth_getFilterChanges"})
TX_METHODS = frozenset({"eth_getTransactionByHash", "eth_getTransactionReceipt",
                        "eth_getTransactionByBlockNumberAndIndex",
                        "eth_getTransactionByBlockHashAndIndex"})


@dataclass(frozen=True)
class Access:
    """A verified token and the member it acts for."""

    claims: TokenClaims
    member_id: bytes  # bytes32 credit code; all zero for an operator token without one
    account: bytes | None  # the signing account (None for operator tokens)


CURRENT: ContextVar[Access | None] = ContextVar("yilian_rpc_access", default=None)


def guarded(node: NodeAPI, method: str, params: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(params)`` if the current token permits it, its result filtered for the caller."""
    access = CURRENT.get()
    if access is None:
        return fn(params)
    claims = access.claims
    if claims.expires_at <= time.time():
        raise Unauthorized("the token has expired; get a new one from /v1/auth/token")
    if not claims.permits(method):
        raise Unauthorized(f"a token of role {claims.role} may not call {method} "
                           "(docs/rpc-auth.md lists each role's methods)")
    if claims.full_view:
        return fn(params)
    _check_params(node, method, params)
    result = fn(params)
    if method in LOG_METHODS and isinstance(result, list):
        return visible_logs(node, result)
    if method in TX_METHODS and isinstance(result, dict):
        tx_hash = result.get("transactionHash", result.get("hash"))
        if not _tx_visible(node, access, str(tx_hash), str(result.get("from"))):
            raise Unauthorized(f"transaction {tx_hash} was not sent by your member and names "
                               "it in no event")
    return result


def _check_params(node: NodeAPI, method: str, params: Any) -> None:
    if not isinstance(params, list):
        return  # the method itself refuses it
    if method in ("eth_getBlockByNumber", "eth_getBlockByHash"):
        if len(params) > 1 and params[1] is True:
            raise Unauthorized("blocks with full transactions are for center and auditor "
                               "tokens; ask with false and fetch your own transactions by "
                               "hash")
    elif method in ("eth_call", "eth_estimateGas"):
        call = params[0] if params else None
        to = call.get("to") if isinstance(call, dict) else None
        target = _address(to)
        if target is None or not (target == MEMBERS or not _has_code(node, target)):
            raise Unauthorized(f"{method} with a member token may target only the member "
                               "registry or an address without code (other calls could read "
                               "private contract state); set gas explicitly when sending")


def _address(value: Any) -> bytes | None:
    if not (isinstance(value, str) and value.startswith("0x") and len(value) == 42):
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


def _has_code(node: NodeAPI, address: bytes) -> bool:
    state = node.core.reader().get_vm(node.core.head()).state
    return bool(state.get_code(Address(address)))


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value[2:]) if isinstance(value, str) and value.startswith("0x") else b""


def _log_visible(node: NodeAPI, member_id: bytes, address: bytes, topics: list[bytes],
                 data: bytes) -> bool:
    if address not in PRIVATE_CONTRACTS:
        return True
    try:
        event = node.domain.abi_at(address).decode_log(topics, data)
    except AbiError:
        return False  # not an event we can attribute: keep it private
    return member_id in event_parties(node.domain, event)


def visible_logs(node: NodeAPI, entries: Iterable[Any]) -> list[Any]:
    """The log entries (geth JSON) the current caller may see; block hashes pass."""
    items = list(entries)
    access = CURRENT.get()
    if access is None or access.claims.full_view:
        return items
    out = []
    for entry in items:
        if not isinstance(entry, dict):
            out.append(entry)
            continue
        topics = [_bytes(t) for t in entry.get("topics", [])]
        if _log_visible(node, access.member_id, _bytes(entry.get("address")), topics,
                        _bytes(entry.get("data"))):
            out.append(entry)
    return out


def _tx_visible(node: NodeAPI, access: Access, tx_hash: str, sender: str) -> bool:
    sender_bytes = _bytes(sender)
    if access.account is not None and sender_bytes == access.account:
        return True
    if len(sender_bytes) == 20 and any(access.member_id.strip(b"\x00")) and \
            node.domain.member_of(sender_bytes) == access.member_id:
        return True
    record = node.core.tx_record(_bytes(tx_hash))
    if record is None:
        return False
    return any(
        bytes(log.address) in PRIVATE_CONTRACTS and _log_visible(
            node, access.member_id, bytes(log.address),
            [t.to_bytes(32, "big") for t in log.topics], bytes(log.data))
        for log in record.receipt.logs)
