"""The node's transaction index entry (node/tx_index.py): receipts stored without their
bloom come back byte for byte, entries written by earlier nodes still read, and a value
transfer's entry is small."""

from __future__ import annotations

import rlp
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.berlin.receipts import TypedReceipt
from helpers import KEYS, sign_transfer
from hypothesis import given
from hypothesis import strategies as st

from yilian.network_configs.local import LOCAL_CHAIN_ID
from yilian.node.genesis import YilianVM
from yilian.node.mempool import decode_transaction
from yilian.node.tx_index import decode_record, encode_record

TXS = YilianVM.get_transaction_builder()
RECEIPTS = YilianVM.get_receipt_builder()
TX = decode_transaction(sign_transfer(KEYS[0], 3), chain_id=LOCAL_CHAIN_ID, max_bytes=1 << 20)

logs = st.lists(st.builds(
    Log,
    st.binary(min_size=20, max_size=20),
    st.lists(st.integers(0, 2**256 - 1), max_size=4).map(tuple),
    st.binary(max_size=100)), max_size=4)
receipts = st.builds(
    lambda type_id, status, gas, entries: (
        Receipt(status, gas, entries) if type_id == 0
        else RECEIPTS.decode(bytes([type_id]) + rlp.encode(Receipt(status, gas, entries)))),
    st.sampled_from([0, 1, 2, 3, 4]),
    st.sampled_from([b"", b"\x01"]) | st.binary(min_size=32, max_size=32),
    st.integers(0, 2**63 - 1),
    logs)


@given(receipts, st.integers(0, 2**40), st.binary(min_size=32, max_size=32),
       st.integers(0, 10_000), st.integers(0, 2**63 - 1), st.integers(0, 10_000))
def test_an_entry_gives_back_the_receipt_byte_for_byte(
        receipt: Receipt, number: int, block_hash: bytes, index: int, gas_before: int,
        log_start: int) -> None:
    raw = encode_record(number, block_hash, index, TX, receipt, gas_before, log_start)
    rec = decode_record(raw, TXS, RECEIPTS)
    assert rec.receipt.encode() == receipt.encode()  # bloom recomputed from the logs
    assert isinstance(rec.receipt, TypedReceipt) == isinstance(receipt, TypedReceipt)
    assert (rec.block_number, rec.block_hash, rec.index, rec.cumulative_gas_before,
            rec.log_index_start) == (number, block_hash, index, gas_before, log_start)
    assert rec.tx.encode() == TX.encode()
    assert b"\x00" * 256 not in raw  # no bloom stored, not even an empty one


@given(receipts)
def test_an_entry_written_by_an_earlier_node_still_reads(receipt: Receipt) -> None:
    old = rlp.encode([7, b"\x11" * 32, 2, TX.encode(), receipt.encode(), 21_000, 1])
    rec = decode_record(old, TXS, RECEIPTS)
    assert rec.receipt.encode() == receipt.encode() and rec.block_number == 7


def test_a_value_transfer_entry_is_small() -> None:
    receipt = RECEIPTS.decode(bytes([2]) + rlp.encode(Receipt(b"\x01", 21_000, ())))
    raw = encode_record(10_000, b"\x22" * 32, 5, TX, receipt, 105_000, 0)
    before = rlp.encode([10_000, b"\x22" * 32, 5, TX.encode(), receipt.encode(), 105_000, 0])
    assert len(raw) < 200 < 400 < len(before), (len(raw), len(before))
