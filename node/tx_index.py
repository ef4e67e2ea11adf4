"""The node's own transaction index: one LevelDB entry per committed transaction.

``INDEX + TX_RECORD + tx hash`` holds where a transaction is (block number and hash, its
position) with the transaction and its receipt, so one read answers
``eth_getTransactionByHash``, ``eth_getTransactionReceipt`` and a REST call's outcome.

The receipt is stored without its 256-byte logs bloom, which is a function of its logs
(Yellow Paper, eq. 26) and is recomputed on reading: the bloom was more than half of every
entry (437 bytes for a value transfer), and this index the largest part of the database,
so it set how much LevelDB compacts. The same goes for py-evm's own hash-to-block lookup,
which this index replaces (:class:`yilian.node.genesis.YilianChainDB` does not write it).

Formats (RLP lists):

* current: ``[number, block hash, index, tx bytes, [receipt type, status or root,
  cumulative gas, logs], gas before, first log index]``; receipt type 0 is a legacy receipt;
* earlier: the same with the receipt's full encoding (bloom included) in place of the
  list; still read, so a data directory written before keeps serving its receipts.

Invariants: ``decode(encode(...))`` gives back a receipt whose ``encode()`` is byte for byte
the receipt that was committed (bloom included), for either format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import ReceiptAPI, ReceiptBuilderAPI, SignedTransactionAPI, TransactionBuilderAPI
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt

_int = rlp.sedes.big_endian_int


@dataclass(frozen=True)
class TxRecord:
    """Where a committed transaction is and what it did: one read serves a receipt."""

    block_number: int
    block_hash: bytes
    index: int
    tx: SignedTransactionAPI
    receipt: ReceiptAPI
    cumulative_gas_before: int
    log_index_start: int


def encode_record(block_number: int, block_hash: bytes, index: int, tx: SignedTransactionAPI,
                  receipt: ReceiptAPI, gas_before: int, log_start: int) -> bytes:
    """The index entry of one committed transaction (the current format)."""
    encoded = receipt.encode()
    type_id = 0 if encoded[0] >= 0xC0 else encoded[0]  # an RLP list: a legacy receipt
    return rlp.encode([block_number, block_hash, index, tx.encode(),
                       [type_id, receipt.state_root, receipt.gas_used, list(receipt.logs)],
                       gas_before, log_start])


def decode_record(raw: bytes, transactions: type[TransactionBuilderAPI],
                  receipts: type[ReceiptBuilderAPI]) -> TxRecord:
    """An index entry as written by :func:`encode_record` or by an earlier node."""
    number, block_hash, index, tx_bytes, receipt_field, gas_before, log_start = rlp.decode(raw)
    return TxRecord(
        block_number=_int.deserialize(number),
        block_hash=bytes(block_hash),
        index=_int.deserialize(index),
        tx=transactions.decode(bytes(tx_bytes)),
        receipt=receipts.decode(bytes(receipt_field) if isinstance(receipt_field, bytes)
                                else _full_receipt(receipt_field)),
        cumulative_gas_before=_int.deserialize(gas_before),
        log_index_start=_int.deserialize(log_start),
    )


def _full_receipt(fields: Any) -> bytes:
    """The receipt's canonical encoding, its bloom recomputed from its logs."""
    type_id, state_root, gas_used, logs = fields
    receipt = Receipt(state_root=bytes(state_root), gas_used=_int.deserialize(gas_used),
                      logs=[Log(bytes(address), tuple(int.from_bytes(t, "big") for t in topics),
                                bytes(data)) for address, topics, data in logs])
    body = rlp.encode(receipt)
    kind = _int.deserialize(type_id)
    return body if kind == 0 else bytes([kind]) + body
