"""JSON shapes of domain events and chain objects for the ``/v1`` REST API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from yilian.api.json_bytes import hex0x
from yilian.node.domain import Located, code_of
from yilian.node.tx_index import TxRecord
from yilian.protocol import credit_code

# Event arguments that hold a member id (a credit code in bytes32): shown as the code text.
MEMBER_FIELDS = frozenset({"subject", "owner", "center", "grantee", "reader", "custodian", "id"})
# Large opaque arguments: history shows their size, not their bytes.
SIZED_FIELDS = frozenset({"ciphertext", "wrapped_keys"})


def jsonable_args(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key in SIZED_FIELDS and isinstance(value, bytes):
            out[f"{key}_size"] = len(value)
        elif key in MEMBER_FIELDS and isinstance(value, bytes):
            out[key] = code_of(value)
        elif isinstance(value, bytes):
            out[key] = hex0x(value)
        else:
            out[key] = value
    return out


def event_json(located: Located) -> dict[str, Any]:
    """One domain event with everything an auditor needs to trace it to its block."""
    return {
        "contract": located.contract,
        "event": located.event.event,
        "block_number": located.block_number,
        "block_hash": hex0x(located.block_hash),
        "timestamp": located.timestamp,
        "tx_hash": hex0x(located.tx_hash),
        "log_index": located.log_index,
        "args": jsonable_args(located.event.args),
    }


def member_id_of(code: str) -> bytes:
    """A credit code from a URL or query as its bytes32 member id; 422 naming the fault."""
    from yilian.api.auth import ApiError

    try:
        return credit_code.to_bytes32(code)
    except credit_code.CreditCodeError as exc:
        raise ApiError("invalid_credit_code", str(exc)) from None


def parse_bytes32(value: str, what: str) -> bytes:
    from yilian.api.auth import ApiError

    if not (isinstance(value, str) and value.startswith("0x") and len(value) == 66):
        raise ApiError("bad_request", f"{what} must be 0x followed by 64 hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ApiError("bad_request", f"{what} is not hex") from None


class SignedTransaction(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    raw_transaction: str = Field(pattern=r"^0x([0-9a-fA-F]{2})+$",
                                 description="a signed Ethereum transaction calling the "
                                 "domain contract (the SDK builds it)")


UINT32_MAX = 2**32 - 1
UINT256_MAX = 2**256 - 1


def committed_json(record: TxRecord) -> dict[str, Any]:
    return {"status": "committed", "tx_hash": hex0x(record.tx.hash),
            "block_number": record.block_number,
            "block_hash": hex0x(record.block_hash)}
