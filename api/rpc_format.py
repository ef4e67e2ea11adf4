"""Convert py-evm objects into JSON-RPC result objects, formatted as geth does.

Conventions (identical to geth's ``internal/ethapi`` marshalling):

* integers are QUANTITY strings from :func:`hexq` (``"0x0"``, ``"0x1a"``);
* byte strings are DATA strings from :func:`yilian.api.json_bytes.hex0x` (``"0x"`` +
  lowercase hex);
* addresses are lowercase 0x-hex (geth never checksums in JSON-RPC results);
* hashes, topics and storage keys are always 32 bytes (left-padded);
* "not yet mined" positional fields (``blockHash`` etc.) are ``None``;
* a mined transaction or log carries its block's ``blockTimestamp`` (geth >= 1.16; required
  in transaction objects by the Ethereum JSON-RPC spec since 2026, optional in logs).

Every function here is pure: it only reads its arguments and returns fresh
``dict``/``list``/``str``/``None`` values that ``json.dumps`` accepts.

py-evm quirks handled here (see the individual docstrings):

* ``Receipt.gas_used`` is the *cumulative* gas used in the block up to and
  including the transaction, so per-transaction gas needs the previous
  receipt's value (``cumulative_gas_before``).
* ``Receipt.state_root`` holds the EIP-658 status: ``b"\\x01"`` on success,
  ``b""`` on failure.
* ``Log.topics`` are ``int`` values (uint256), not bytes.
* Access-list storage keys are ``int`` values too.
* Typed transactions raise ``AttributeError`` for ``gas_price`` (types 2+) and
  ``NotImplementedError`` for fields of later types (e.g.
  ``authorization_list`` on a type-2 tx), so fields are chosen by ``type_id``
  rather than probed with ``getattr``.
* ``tx.to == b""`` means contract creation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, cast

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    LegacyTransactionFieldsAPI,
    LogAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth_typing import Address

from yilian.api.json_bytes import hex0x

__all__ = [
    "effective_gas_price",
    "format_access_list",
    "format_block",
    "format_header",
    "format_log",
    "format_receipt",
    "format_transaction",
    "hexq",
    "log_matches",
    "tx_type",
]

LEGACY_TX_TYPE = 0
ACCESS_LIST_TX_TYPE = 1
DYNAMIC_FEE_TX_TYPE = 2
BLOB_TX_TYPE = 3
SET_CODE_TX_TYPE = 4
_EIP1559_TYPES = frozenset({DYNAMIC_FEE_TX_TYPE, BLOB_TX_TYPE, SET_CODE_TX_TYPE})
_BLOB_GAS_PER_BLOB = 2**17


# ---------------------------------------------------------------------------
# primitive encoders
# ---------------------------------------------------------------------------


def hexq(value: int) -> str:
    """Encode a non-negative integer as a JSON-RPC QUANTITY (``"0x0"``, ``"0xff"``).

    Invariant: no leading zeros, lowercase digits, and
    ``rpc_params.quantity(hexq(n), w) == n`` for ``0 <= n < 2**256``.
    Raises ``ValueError`` for negatives and ``TypeError`` for non-ints/bools.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"hexq expects an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"hexq expects a non-negative int, got {value}")
    return hex(value)


def _hex32(value: int | bytes) -> str:
    """Encode a 32-byte word given as int (py-evm topics/keys) or bytes."""
    if isinstance(value, int):
        return "0x" + value.to_bytes(32, "big").hex()
    return "0x" + bytes(value).rjust(32, b"\x00").hex()


def _bloom(value: int) -> str:
    """Encode a 2048-bit bloom filter (py-evm stores it as an int) as 256 bytes."""
    return "0x" + int(value).to_bytes(256, "big").hex()


def _to(value: bytes) -> str | None:
    """Encode a transaction ``to``; ``b""`` (contract creation) becomes ``None``."""
    return hex0x(value) if value else None


def _topic_bytes(value: int | bytes) -> bytes:
    """Normalise a py-evm topic (int) or a bytes topic to 32 bytes."""
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    return bytes(value).rjust(32, b"\x00")


def _optional_attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name)`` or ``None`` if the fork does not have that field."""
    try:
        return getattr(obj, name)
    except (AttributeError, NotImplementedError):
        return None


# ---------------------------------------------------------------------------
# transactions
# ---------------------------------------------------------------------------


def tx_type(tx: SignedTransactionAPI) -> int:
    """The EIP-2718 type of ``tx``: py-evm uses ``type_id is None`` for legacy (0)."""
    type_id = getattr(tx, "type_id", None)
    return LEGACY_TX_TYPE if type_id is None else int(type_id)


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int | None) -> int:
    """Price per gas actually paid by ``tx`` in a block with ``base_fee``.

    Legacy and access-list txs pay ``gas_price``.  EIP-1559 style txs (types
    2, 3, 4) pay ``min(max_fee_per_gas, base_fee + max_priority_fee_per_gas)``;
    with ``base_fee=None`` (pending / unknown block) geth reports
    ``max_fee_per_gas``, and so does this function.
    """
    if tx_type(tx) in _EIP1559_TYPES:
        if base_fee is None:
            return int(tx.max_fee_per_gas)
        return min(int(tx.max_fee_per_gas), base_fee + int(tx.max_priority_fee_per_gas))
    return int(tx.gas_price)


def format_access_list(access_list: Iterable[Any]) -> list[dict[str, Any]]:
    """Format a py-evm access list (``(address, [int keys])`` pairs) for JSON."""
    return [
        {"address": hex0x(addr), "storageKeys": [_hex32(k) for k in keys]}
        for addr, keys in access_list
    ]


def _format_authorization(auth: Any) -> dict[str, Any]:
    """Format an EIP-7702 authorization tuple as geth's ``SetCodeAuthorization``."""
    return {
        "chainId": hexq(auth.chain_id),
        "address": hex0x(auth.address),
        "nonce": hexq(auth.nonce),
        "yParity": hexq(auth.y_parity),
        "r": hexq(auth.r),
        "s": hexq(auth.s),
    }


def format_transaction(
    tx: SignedTransactionAPI,
    *,
    chain_id: int,
    block_hash: bytes | None = None,
    block_number: int | None = None,
    index: int | None = None,
    base_fee: int | None = None,
    block_timestamp: int | None = None,
) -> dict[str, Any]:
    """Format a signed transaction as geth's ``RPCTransaction``.

    ``block_hash``/``block_number``/``block_timestamp``/``index`` are ``None`` for
    pending transactions and are emitted as ``null``; a mined transaction (``block_hash``
    given) needs all four, else ValueError.  ``base_fee`` is the including
    block's base fee; it determines ``gasPrice`` for EIP-1559 types (see
    :func:`effective_gas_price`).

    Per type, as geth: legacy txs carry ``v`` exactly as signed (27/28 or
    EIP-155 ``chainId*2+35/36``) and ``chainId`` only when EIP-155 protected;
    typed txs carry ``chainId``, ``accessList``, ``yParity`` and ``v == yParity``;
    types 2-4 add ``maxFeePerGas``/``maxPriorityFeePerGas``; type 3 adds
    ``maxFeePerBlobGas``/``blobVersionedHashes``; type 4 adds
    ``authorizationList``.  ``chain_id`` (the node's chain id) is used only as
    a fallback when a typed tx object lacks its own chain id.
    """
    kind = tx_type(tx)
    mined = block_hash is not None
    if mined and (block_number is None or block_timestamp is None or index is None):
        raise ValueError("a mined transaction needs block_number, block_timestamp and index")
    out: dict[str, Any] = {
        "blockHash": hex0x(block_hash) if block_hash is not None else None,
        "blockNumber": hexq(block_number) if block_number is not None else None,
        "blockTimestamp": hexq(block_timestamp) if block_timestamp is not None else None,
        "from": hex0x(tx.sender),
        "gas": hexq(tx.gas),
        "gasPrice": hexq(effective_gas_price(tx, base_fee if mined else None)),
    }
    if kind in _EIP1559_TYPES:
        out["maxFeePerGas"] = hexq(tx.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = hexq(tx.max_priority_fee_per_gas)
    if kind == BLOB_TX_TYPE:
        out["maxFeePerBlobGas"] = hexq(tx.max_fee_per_blob_gas)
    out.update(
        {
            "hash": hex0x(tx.hash),
            "input": hex0x(tx.data),
            "nonce": hexq(tx.nonce),
            "to": _to(tx.to),
            "transactionIndex": hexq(index) if index is not None else None,
            "value": hexq(tx.value),
            "type": hexq(kind),
        }
    )
    if kind == LEGACY_TX_TYPE:
        legacy_chain_id = _optional_attr(tx, "chain_id")
        if legacy_chain_id:
            out["chainId"] = hexq(legacy_chain_id)
        out["v"] = hexq(cast(LegacyTransactionFieldsAPI, tx).v)
        out["r"] = hexq(tx.r)
        out["s"] = hexq(tx.s)
        return out

    typed_chain_id = _optional_attr(tx, "chain_id")
    out["accessList"] = format_access_list(tx.access_list)
    out["chainId"] = hexq(chain_id if typed_chain_id is None else typed_chain_id)
    if kind == BLOB_TX_TYPE:
        out["blobVersionedHashes"] = [hex0x(h) for h in tx.blob_versioned_hashes]
    if kind == SET_CODE_TX_TYPE:
        out["authorizationList"] = [_format_authorization(a) for a in tx.authorization_list]
    out["v"] = hexq(tx.y_parity)
    out["r"] = hexq(tx.r)
    out["s"] = hexq(tx.s)
    out["yParity"] = hexq(tx.y_parity)
    return out


# ---------------------------------------------------------------------------
# logs and receipts
# ---------------------------------------------------------------------------


def format_log(
    log: LogAPI,
    *,
    block_hash: bytes | None,
    block_number: int | None,
    tx_hash: bytes | None,
    tx_index: int | None,
    log_index: int,
    removed: bool = False,
    block_timestamp: int | None = None,
) -> dict[str, Any]:
    """Format a py-evm log as geth's ``types.Log`` JSON.

    ``log_index`` is the position of the log within the *block*.  Topics are
    32-byte hex (py-evm stores them as ints).  ``blockTimestamp`` (geth >=
    1.16) is emitted only when ``block_timestamp`` is given.
    """
    out: dict[str, Any] = {
        "address": hex0x(log.address),
        "topics": [_hex32(t) for t in log.topics],
        "data": hex0x(log.data),
        "blockNumber": hexq(block_number) if block_number is not None else None,
        "transactionHash": hex0x(tx_hash) if tx_hash is not None else None,
        "transactionIndex": hexq(tx_index) if tx_index is not None else None,
        "blockHash": hex0x(block_hash) if block_hash is not None else None,
    }
    if block_timestamp is not None:
        out["blockTimestamp"] = hexq(block_timestamp)
    out["logIndex"] = hexq(log_index)
    out["removed"] = bool(removed)
    return out


def format_receipt(
    receipt: ReceiptAPI,
    *,
    tx: SignedTransactionAPI,
    block_hash: bytes,
    block_number: int,
    index: int,
    cumulative_gas_before: int,
    log_index_start: int,
    effective_gas_price: int,
    block_timestamp: int,
    blob_gas_price: int | None = None,
) -> dict[str, Any]:
    """Format a py-evm receipt as geth's receipt JSON.

    ``receipt.gas_used`` in py-evm is *cumulative* for the block, so
    ``cumulativeGasUsed = receipt.gas_used`` and
    ``gasUsed = receipt.gas_used - cumulative_gas_before``, where
    ``cumulative_gas_before`` is the previous receipt's ``gas_used`` (0 for
    the first transaction).  Log ``i`` of this receipt gets block-wide
    ``logIndex = log_index_start + i``.  ``status`` is ``"0x1"`` iff
    ``receipt.state_root == b"\\x01"`` (EIP-658).  ``contractAddress`` is
    ``keccak(rlp([sender, nonce]))[12:]`` for creations and ``None``
    otherwise.  For blob txs (type 3) ``blobGasUsed`` is added, and
    ``blobGasPrice`` when ``blob_gas_price`` is given.
    """
    kind = tx_type(tx)
    sender = tx.sender
    tx_hash = tx.hash
    cumulative = int(receipt.gas_used)
    gas_used = cumulative - cumulative_gas_before
    if gas_used < 0:
        raise ValueError(
            f"cumulative_gas_before ({cumulative_gas_before}) exceeds the receipt's "
            f"cumulative gas ({cumulative}); pass the previous receipt's gas_used"
        )
    contract = hex0x(generate_contract_address(Address(sender), tx.nonce)) if not tx.to else None
    out: dict[str, Any] = {
        "blockHash": hex0x(block_hash),
        "blockNumber": hexq(block_number),
        "contractAddress": contract,
        "cumulativeGasUsed": hexq(cumulative),
        "effectiveGasPrice": hexq(effective_gas_price),
        "from": hex0x(sender),
        "gasUsed": hexq(gas_used),
        "logs": [
            format_log(
                log,
                block_hash=block_hash,
                block_number=block_number,
                tx_hash=tx_hash,
                tx_index=index,
                log_index=log_index_start + i,
                block_timestamp=block_timestamp,
            )
            for i, log in enumerate(receipt.logs)
        ],
        "logsBloom": _bloom(receipt.bloom),
        "status": "0x1" if receipt.state_root == b"\x01" else "0x0",
        "to": _to(tx.to),
        "transactionHash": hex0x(tx_hash),
        "transactionIndex": hexq(index),
        "type": hexq(kind),
    }
    if kind == BLOB_TX_TYPE:
        out["blobGasUsed"] = hexq(_BLOB_GAS_PER_BLOB * len(tx.blob_versioned_hashes))
        if blob_gas_price is not None:
            out["blobGasPrice"] = hexq(blob_gas_price)
    return out


def log_matches(
    log: LogAPI,
    address_set: Collection[bytes] | None,
    topics_filter: Sequence[bytes | Collection[bytes] | None],
) -> bool:
    """Standard ``eth_getLogs`` matching of one log against a filter.

    * ``address_set`` empty or ``None`` matches any address, otherwise the
      log's address must be a member.
    * ``topics_filter[i]`` constrains the log's ``i``-th topic: ``None`` or an
      empty collection matches anything, a ``bytes`` value must be equal, and
      a collection of ``bytes`` matches any member (OR).  Positions are ANDed.
    * A log with fewer topics than filter positions never matches (even if
      the extra positions are wildcards), exactly as geth.

    Topics may be 32-byte ``bytes`` or ints (py-evm's representation).
    """
    if address_set and bytes(log.address) not in address_set:
        return False
    topics = log.topics
    if len(topics_filter) > len(topics):
        return False
    for wanted, actual in zip(topics_filter, topics, strict=False):
        if wanted is None:
            continue
        topic = _topic_bytes(actual)
        if isinstance(wanted, bytes | bytearray):
            if _topic_bytes(bytes(wanted)) != topic:
                return False
            continue
        if not wanted:
            continue
        if not any(_topic_bytes(w) == topic for w in wanted):
            return False
    return True


# ---------------------------------------------------------------------------
# headers and blocks
# ---------------------------------------------------------------------------


def format_header(header: BlockHeaderAPI, *, size: int | None = None) -> dict[str, Any]:
    """Format a block header as geth's ``RPCMarshalHeader`` (plus ``size``).

    Fork-specific fields (``baseFeePerGas`` London, ``withdrawalsRoot``
    Shanghai, ``blobGasUsed``/``excessBlobGas``/``parentBeaconBlockRoot``
    Cancun, ``requestsHash`` Prague) are included only when the header has
    them.  ``totalDifficulty`` is always ``"0x0"`` (post-merge style chain);
    ``nonce`` is always 8 bytes and ``logsBloom`` 256 bytes.
    """
    nonce = bytes(getattr(header, "nonce", b"") or b"")
    out: dict[str, Any] = {
        "number": hexq(header.block_number),
        "hash": hex0x(header.hash),
        "parentHash": hex0x(header.parent_hash),
        "nonce": hex0x(nonce.rjust(8, b"\x00")),
        "mixHash": hex0x(header.mix_hash),
        "sha3Uncles": hex0x(header.uncles_hash),
        "logsBloom": _bloom(header.bloom),
        "transactionsRoot": hex0x(header.transaction_root),
        "stateRoot": hex0x(header.state_root),
        "receiptsRoot": hex0x(header.receipt_root),
        "miner": hex0x(header.coinbase),
        "difficulty": hexq(header.difficulty),
        "totalDifficulty": "0x0",
        "extraData": hex0x(header.extra_data),
        "gasLimit": hexq(header.gas_limit),
        "gasUsed": hexq(header.gas_used),
        "timestamp": hexq(header.timestamp),
    }
    if size is not None:
        out["size"] = hexq(size)
    for attr, key, fmt in _FORK_HEADER_FIELDS:
        value = _optional_attr(header, attr)
        if value is not None:
            out[key] = fmt(value)
    return out


# Header fields added by later forks (London .. Prague): (py-evm attribute, JSON key, format).
_FORK_HEADER_FIELDS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("base_fee_per_gas", "baseFeePerGas", hexq),
    ("withdrawals_root", "withdrawalsRoot", hex0x),
    ("blob_gas_used", "blobGasUsed", hexq),
    ("excess_blob_gas", "excessBlobGas", hexq),
    ("parent_beacon_block_root", "parentBeaconBlockRoot", hex0x),
    ("requests_hash", "requestsHash", hex0x),
)


def _format_withdrawal(withdrawal: Any) -> dict[str, Any]:
    """Format a Shanghai withdrawal (``amount`` is in gwei, as on the wire)."""
    return {
        "index": hexq(withdrawal.index),
        "validatorIndex": hexq(withdrawal.validator_index),
        "address": hex0x(withdrawal.address),
        "amount": hexq(withdrawal.amount),
    }


def format_block(block: BlockAPI, *, full_transactions: bool, chain_id: int) -> dict[str, Any]:
    """Format a block as geth's ``RPCMarshalBlock``.

    Adds to :func:`format_header`: ``size`` (``len(rlp.encode(block))``),
    ``transactions`` (hashes, or full objects with block position and
    effective ``gasPrice`` when ``full_transactions``), ``uncles`` (hashes,
    always ``[]`` post-merge) and, for Shanghai+ blocks, ``withdrawals``.
    """
    header = block.header
    out = format_header(header, size=len(rlp.encode(block)))
    block_hash = header.hash
    if full_transactions:
        base_fee = _optional_attr(header, "base_fee_per_gas")
        out["transactions"] = [
            format_transaction(
                tx,
                chain_id=chain_id,
                block_hash=block_hash,
                block_number=header.block_number,
                index=i,
                base_fee=base_fee,
                block_timestamp=header.timestamp,
            )
            for i, tx in enumerate(block.transactions)
        ]
    else:
        out["transactions"] = [hex0x(tx.hash) for tx in block.transactions]
    out["uncles"] = [hex0x(uncle.hash) for uncle in block.uncles]
    if _optional_attr(header, "withdrawals_root") is not None:
        withdrawals = _optional_attr(block, "withdrawals") or ()
        out["withdrawals"] = [_format_withdrawal(w) for w in withdrawals]
    return out
