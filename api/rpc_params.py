"""Strict parsers for Ethereum JSON-RPC parameters (the log filter object's is
:mod:`yilian.api.rpc_log_params`).

Every parser takes a decoded JSON value (``None``, ``bool``, ``int``,
``float``, ``str``, ``list`` or ``dict``) plus ``where`` -- a human-readable
location such as ``"params[0]"`` or ``"params[0].to"`` -- and either returns a
Python value or raises :class:`~yilian.api.rpc_errors.InvalidParams` whose
message names ``where``, says what was expected and shows what was received.

Invariants shared by all parsers:

* The only exception they raise is ``InvalidParams`` (property-tested).
* They are pure: no I/O, no global state, inputs are never mutated.
* JSON numbers are never accepted where the Ethereum spec requires hex
  strings; ``True``/``False`` are never accepted as numbers.
* Hex digits may be upper or lower case, but the ``0x`` prefix must be
  lower case and no whitespace, signs or underscores are tolerated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from eth_utils import to_checksum_address

from .rpc_errors import InvalidParams

__all__ = [
    "BLOCK_TAGS",
    "UINT64_MAX",
    "UINT256_MAX",
    "AccessListEntry",
    "BlockId",
    "BlockRef",
    "CallArgs",
    "address",
    "block_number_or_tag",
    "block_tag",
    "boolean",
    "call_object",
    "data",
    "describe",
    "hash32",
    "must_be",
    "params_list",
    "quantity",
]

UINT64_MAX: Final = 2**64 - 1
UINT256_MAX: Final = 2**256 - 1
#: Named blocks accepted wherever a block number is.
BLOCK_TAGS: Final = frozenset({"latest", "earliest", "pending", "safe", "finalized"})

_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")


def describe(value: Any) -> str:
    """Describe a JSON value briefly for an error message (never raises)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**30 else "a very large number"
        return f"number {text}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 72 else value[:60] + f"...({len(value)} chars)"
        return repr(shown)
    if isinstance(value, list):
        return f"array of {len(value)} items"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def must_be(where: str, expected: str, value: Any, hint: str = "") -> InvalidParams:
    """Build the standard ``"<where> must be <expected>, got <value>"`` error."""
    msg = f"{where} must be {expected}, got {describe(value)}"
    if hint:
        msg += f" ({hint})"
    return InvalidParams(msg)


# ---------------------------------------------------------------------------
# scalars
# ---------------------------------------------------------------------------


def quantity(value: Any, where: str, *, max_value: int = UINT256_MAX) -> int:
    """Parse a JSON-RPC QUANTITY: ``"0x0"`` or ``"0x"`` + hex without leading zeros.

    Invariants: the result is an ``int`` in ``[0, max_value]`` (default
    ``2**256 - 1``) and ``quantity(hexq(n), w) == n`` for every such ``n``.
    """
    expected = "a 0x-prefixed hex quantity without leading zeros"
    if isinstance(value, bool) or not isinstance(value, str):
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= max_value:
            hint = f"encode numbers as hex strings, e.g. {hex(value)!r}"
        raise must_be(where, expected, value, hint)
    if not value.startswith("0x"):
        raise must_be(where, expected, value, "add the 0x prefix")
    digits = value[2:]
    if not digits:
        raise must_be(where, expected, value, "use '0x0' for zero")
    if not _HEX_DIGITS.fullmatch(digits):
        raise must_be(where, expected, value, "only 0-9, a-f and A-F are allowed after 0x")
    if len(digits) > 1 and digits[0] == "0":
        stripped = digits.lstrip("0") or "0"
        hint = f"write it as '0x{stripped}'" if len(stripped) <= 64 else "remove the leading zeros"
        raise must_be(where, expected, value, hint)
    if len(digits) > 64:
        raise must_be(where, expected, value, "value exceeds 256 bits")
    number = int(digits, 16)
    if number > max_value:
        raise must_be(where, f"a hex quantity no greater than {hex(max_value)}", value)
    return number


def data(value: Any, where: str, length: int | None = None) -> bytes:
    """Parse a JSON-RPC DATA string: ``"0x"`` followed by an even number of hex digits.

    Invariants: ``"0x"`` maps to ``b""``; when ``length`` is given the result
    is exactly ``length`` bytes; ``data("0x" + b.hex(), w) == b``.
    """
    if length is None:
        expected = "0x-prefixed hex data with an even number of digits"
    else:
        expected = f"0x-prefixed hex data of exactly {length} bytes ({2 * length} hex digits)"
    if not isinstance(value, str):
        raise must_be(where, expected, value)
    if not value.startswith("0x"):
        raise must_be(where, expected, value, "add the 0x prefix")
    digits = value[2:]
    if not _HEX_DIGITS.fullmatch(digits):
        raise must_be(where, expected, value, "only 0-9, a-f and A-F are allowed after 0x")
    if len(digits) % 2:
        raise must_be(where, expected, value, "odd number of hex digits; pad with a leading 0")
    raw = bytes.fromhex(digits)
    if length is not None and len(raw) != length:
        unit = "byte" if len(raw) == 1 else "bytes"
        raise must_be(where, expected, value, f"it is {len(raw)} {unit} long")
    return raw


def hash32(value: Any, where: str) -> bytes:
    """Parse a 32-byte hash (block hash, tx hash, topic, storage key).

    Invariant: the result is exactly 32 bytes.
    """
    return data(value, where, 32)


def address(value: Any, where: str) -> bytes:
    """Parse a 20-byte address, returning its canonical (raw) bytes.

    All-lowercase and all-uppercase hex are accepted as-is; mixed case is
    treated as an EIP-55 checksum and rejected when the checksum is wrong.
    Invariant: the result is exactly 20 bytes.
    """
    raw = data(value, where, 20)
    text: str = value  # data() accepted it, so it is a str
    digits = text[2:]
    if digits not in (digits.lower(), digits.upper()):
        good = to_checksum_address(raw)
        if good[2:] != digits:
            raise must_be(
                where,
                "an address with a valid EIP-55 checksum",
                value,
                f"did you mean {good}? or send the address in all-lowercase hex",
            )
    return raw


def boolean(value: Any, where: str) -> bool:
    """Parse a JSON boolean (``true``/``false`` only; no 0/1 or strings)."""
    if not isinstance(value, bool):
        raise must_be(where, "a JSON boolean (true or false)", value)
    return value


# ---------------------------------------------------------------------------
# block identifiers
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockRef:
    """An EIP-1898 block reference: ``{"blockNumber": n}`` or ``{"blockHash": h}``.

    Invariant: exactly one of ``number`` / ``hash`` is not ``None``;
    ``require_canonical`` can only be ``True`` for hash references.
    Callers typically do::

        if ref.hash is not None: header = by_hash(ref.hash, ref.require_canonical)
        else: header = by_number(ref.number)
    """

    number: int | None = None
    hash: bytes | None = None
    require_canonical: bool = False

    def __post_init__(self) -> None:
        """Enforce the one-of invariant."""
        if (self.number is None) == (self.hash is None):
            raise ValueError("BlockRef needs exactly one of number or hash")
        if self.hash is not None and len(self.hash) != 32:
            raise ValueError("BlockRef.hash must be 32 bytes")
        if self.require_canonical and self.hash is None:
            raise ValueError("require_canonical only applies to hash references")


#: What :func:`block_tag` returns: a tag name, a block number, or an EIP-1898 ref.
BlockId = int | str | BlockRef

_TAG_LIST = ", ".join(f"'{t}'" for t in sorted(BLOCK_TAGS))


def block_number_or_tag(value: Any, where: str) -> int | str:
    """Parse a block number (QUANTITY) or one of :data:`BLOCK_TAGS`.

    Used where EIP-1898 objects are not allowed (``eth_getBlockByNumber``,
    ``fromBlock``/``toBlock``).  Invariant: a returned ``str`` is always a
    member of :data:`BLOCK_TAGS`; a returned ``int`` is in ``[0, 2**64-1]``.
    """
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value
    if isinstance(value, str) and value.startswith("0x"):
        return quantity(value, where, max_value=UINT64_MAX)
    raise must_be(where, f"a block number as a hex quantity or one of {_TAG_LIST}", value)


def block_tag(value: Any, where: str) -> BlockId:
    """Parse a block parameter: tag, hex block number, block hash, or EIP-1898 object.

    Returns a ``str`` (member of :data:`BLOCK_TAGS`), an ``int`` block number,
    or a :class:`BlockRef` for a plain 32-byte block hash (the spec's
    ``BlockNumberOrTagOrHash``) and for the object forms ``{"blockNumber": q}``
    and ``{"blockHash": h, "requireCanonical": b}``.  A tag inside an object
    (``{"blockNumber": "latest"}``) is returned as the bare tag string since
    the two are equivalent.  Unknown object keys are rejected.  A 0x string of
    exactly 64 hex digits is a hash, never a number: no block number needs
    more than 16 (uint64).
    """
    if isinstance(value, str) and len(value) == 66 and value[:2] == "0x":
        return BlockRef(hash=hash32(value, where))
    if not isinstance(value, dict):
        return block_number_or_tag(value, where)
    allowed = {"blockNumber", "blockHash", "requireCanonical"}
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise InvalidParams(
            f"{where} has unknown key {unknown[0]!r}; an EIP-1898 block object takes "
            "either 'blockNumber', or 'blockHash' with optional 'requireCanonical'"
        )
    has_number = "blockNumber" in value
    has_hash = "blockHash" in value
    if has_number == has_hash:
        raise InvalidParams(
            f"{where} must contain exactly one of 'blockNumber' or 'blockHash' "
            "(EIP-1898 block object)"
        )
    if has_number:
        if "requireCanonical" in value:
            raise InvalidParams(
                f"{where}.requireCanonical is only allowed together with 'blockHash'"
            )
        inner = block_number_or_tag(value["blockNumber"], f"{where}.blockNumber")
        return inner if isinstance(inner, str) else BlockRef(number=inner)
    block_hash = hash32(value["blockHash"], f"{where}.blockHash")
    canonical = value.get("requireCanonical")
    require = False if canonical is None else boolean(canonical, f"{where}.requireCanonical")
    return BlockRef(hash=block_hash, require_canonical=require)


# ---------------------------------------------------------------------------
# transaction call objects
# ---------------------------------------------------------------------------

#: ``(address, storage_keys)`` with 20-byte address and 32-byte keys.
AccessListEntry = tuple[bytes, tuple[bytes, ...]]


@dataclass(frozen=True, slots=True)
class CallArgs:
    """A parsed transaction-call object (``eth_call``, ``eth_estimateGas``...).

    Every field is ``None`` when the key was absent or ``null``; callers apply
    their own defaults.  Invariants: addresses are 20 bytes; ``gas`` and
    ``nonce`` fit in uint64; ``gas_price`` is never combined with the
    EIP-1559 fee fields; ``max_priority_fee_per_gas <= max_fee_per_gas``
    when both are given; ``to is None`` means contract creation.
    """

    from_: bytes | None = None
    to: bytes | None = None
    gas: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    value: int | None = None
    data: bytes | None = None
    nonce: int | None = None
    access_list: tuple[AccessListEntry, ...] | None = None
    chain_id: int | None = None

    def evm_access_list(self) -> tuple[tuple[bytes, tuple[int, ...]], ...]:
        """The access list in py-evm's shape: storage keys as ints (``()`` if unset)."""
        return tuple(
            (addr, tuple(int.from_bytes(k, "big") for k in keys))
            for addr, keys in (self.access_list or ())
        )


_CALL_KEYS: Final = frozenset(
    {
        "from",
        "to",
        "gas",
        "gasPrice",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "value",
        "data",
    "describe",
        "input",
        "nonce",
        "accessList",
        "chainId",
        "type",
    }
)
# Keys of transaction types this parser does not model; passing them would
# silently change the meaning of the call, so they are rejected.
_UNSUPPORTED_CALL_KEYS: Final = {
    "blobVersionedHashes": "blob transactions are not supported",
    "maxFeePerBlobGas": "blob transactions are not supported",
    "blobs": "blob transactions are not supported",
    "authorizationList": "EIP-7702 authorization lists are not supported in calls",
}


def _access_list(value: Any, where: str) -> tuple[AccessListEntry, ...]:
    """Parse ``[{"address": a, "storageKeys": [h, ...]}, ...]``."""
    if not isinstance(value, list):
        raise must_be(where, 'an access list: array of {"address", "storageKeys"} objects', value)
    entries: list[AccessListEntry] = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise must_be(at, 'an object {"address": ..., "storageKeys": [...]}', item)
        extra = sorted(str(k) for k in item if k not in ("address", "storageKeys"))
        if extra:
            raise InvalidParams(
                f"{at} has unknown key {extra[0]!r}; access list entries take only "
                "'address' and 'storageKeys'"
            )
        if "address" not in item:
            raise InvalidParams(f"{at} is missing required field 'address'")
        if "storageKeys" not in item:
            raise InvalidParams(f"{at} is missing required field 'storageKeys' (use [] for none)")
        addr = address(item["address"], f"{at}.address")
        keys = item["storageKeys"]
        if not isinstance(keys, list):
            raise must_be(f"{at}.storageKeys", "an array of 32-byte hex storage keys", keys)
        parsed = tuple(hash32(k, f"{at}.storageKeys[{j}]") for j, k in enumerate(keys))
        entries.append((addr, parsed))
    return tuple(entries)


def _opt(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]`` or ``None`` when missing (JSON null and absence are equivalent)."""
    return obj.get(key)


def call_object(value: Any, where: str) -> CallArgs:
    """Parse a transaction call object into :class:`CallArgs`.

    Accepts geth's keys (``from``, ``to``, ``gas``, ``gasPrice``,
    ``maxFeePerGas``, ``maxPriorityFeePerGas``, ``value``, ``data``/``input``,
    ``nonce``, ``accessList``, ``chainId``, ``type``).  ``data`` and ``input``
    may both be given only if equal.  Unknown keys and blob / EIP-7702 fields
    (unless ``null``) are rejected so typos cannot silently change a call.
    """
    if not isinstance(value, dict):
        raise must_be(where, "a transaction call object (JSON object)", value)
    for key in value:
        if key in _UNSUPPORTED_CALL_KEYS and value[key] is not None:
            raise InvalidParams(f"{where}.{key}: {_UNSUPPORTED_CALL_KEYS[key]}")
        if key not in _CALL_KEYS and key not in _UNSUPPORTED_CALL_KEYS:
            shown = describe(key)
            raise InvalidParams(
                f"{where} has unknown key {shown}; allowed keys are "
                + ", ".join(sorted(_CALL_KEYS))
            )

    def q(key: str, max_value: int = UINT256_MAX) -> int | None:
        raw = _opt(value, key)
        return None if raw is None else quantity(raw, f"{where}.{key}", max_value=max_value)

    def a(key: str) -> bytes | None:
        raw = _opt(value, key)
        return None if raw is None else address(raw, f"{where}.{key}")

    payload: bytes | None = None
    raw_data, raw_input = _opt(value, "data"), _opt(value, "input")
    parsed_data = None if raw_data is None else data(raw_data, f"{where}.data")
    parsed_input = None if raw_input is None else data(raw_input, f"{where}.input")
    if parsed_data is not None and parsed_input is not None and parsed_data != parsed_input:
        raise InvalidParams(
            f'{where}: both "data" and "input" are set and not equal; '
            'use "input" to pass transaction call data'
        )
    payload = parsed_input if parsed_input is not None else parsed_data

    tx_type = q("type", 0xFF)
    if tx_type is not None and tx_type not in (0, 1, 2):
        raise InvalidParams(
            f"{where}.type must be 0x0, 0x1 or 0x2 for a call, got {describe(value['type'])}"
        )

    gas_price = q("gasPrice")
    max_fee = q("maxFeePerGas")
    max_tip = q("maxPriorityFeePerGas")
    if gas_price is not None and (max_fee is not None or max_tip is not None):
        raise InvalidParams(
            f"{where}: both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) "
            "specified; send either gasPrice (legacy) or the EIP-1559 fee fields"
        )
    if max_fee is not None and max_tip is not None and max_tip > max_fee:
        raise InvalidParams(
            f"{where}: maxPriorityFeePerGas ({max_tip}) must not exceed maxFeePerGas ({max_fee})"
        )

    raw_access = _opt(value, "accessList")
    access = None if raw_access is None else _access_list(raw_access, f"{where}.accessList")

    return CallArgs(
        from_=a("from"),
        to=a("to"),
        gas=q("gas", UINT64_MAX),
        gas_price=gas_price,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=max_tip,
        value=q("value"),
        data=payload,
        nonce=q("nonce", UINT64_MAX),
        access_list=access,
        chain_id=q("chainId"),
    )


# ---------------------------------------------------------------------------
# params array
# ---------------------------------------------------------------------------


def params_list(params: Any, min_len: int, max_len: int, method: str) -> list[Any]:
    """Validate the ``params`` member of a request and pad it to ``max_len``.

    ``params`` may be absent (``None``), which counts as ``[]``.  Invariant:
    the returned list is a new list of exactly ``max_len`` items, with
    missing optional trailing parameters filled with ``None`` (JSON null),
    matching geth where an omitted optional argument equals ``null``.
    """
    if params is None:
        params = []
    if not isinstance(params, list):
        raise InvalidParams(
            f"{method}: params must be a JSON array of positional arguments, got {describe(params)}"
        )
    arity = f"exactly {min_len}" if min_len == max_len else f"{min_len} to {max_len}"
    noun = "param" if max_len == 1 else "params"
    if len(params) < min_len:
        raise InvalidParams(
            f"{method} expects {arity} {noun}, got {len(params)}; "
            f"missing value for required argument {len(params)}"
        )
    if len(params) > max_len:
        raise InvalidParams(
            f"{method} expects {arity} {noun}, got {len(params)}; "
            f"too many arguments, want at most {max_len}"
        )
    return [*params, *([None] * (max_len - len(params)))]
