"""Store / PendingWrites atomicity, ChainCore build-commit-reopen-replay, genesis parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth.abc import SignedTransactionAPI
from eth_utils import keccak, to_canonical_address
from helpers import ADDRESSES, KEYS, genesis_doc, sign_put, sign_transfer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.network_configs.local import LOCAL_CHAIN_ID, RECORD_STORE_ADDRESS
from yilian.node.chain import BlockEnv, BuiltBlock, ChainCore, ChainError, GenesisMismatch
from yilian.node.genesis import Genesis, GenesisError, parse_genesis
from yilian.node.mempool import decode_transaction
from yilian.node.storage import EVM, INDEX, META, PendingWrites, Store

PROPOSER = bytes(to_canonical_address(ADDRESSES[0]))
RECORD_STORE = bytes(to_canonical_address(RECORD_STORE_ADDRESS))


def decode(raw: bytes) -> SignedTransactionAPI:
    return decode_transaction(raw, chain_id=LOCAL_CHAIN_ID, max_bytes=1 << 20)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db")
    try:
        yield s
    finally:
        s.close()


# -- Store / PendingWrites ---------------------------------------------------------------------


def test_overlay_reads_its_own_writes_and_hides_deletes(store: Store) -> None:
    store.commit(None, {EVM + b"a": b"committed-a", EVM + b"b": b"committed-b"})
    overlay = PendingWrites(store.db, EVM)
    assert overlay[b"a"] == b"committed-a"
    overlay[b"a"] = b"pending-a"
    overlay[b"c"] = b"pending-c"
    overlay[b"empty"] = b""
    del overlay[b"b"]
    assert overlay[b"a"] == b"pending-a" and overlay[b"c"] == b"pending-c"
    assert overlay[b"empty"] == b""
    with pytest.raises(KeyError):
        overlay[b"b"]
    assert not overlay._exists(b"b") and overlay._exists(b"c")
    with pytest.raises(KeyError):
        del overlay[b"never"]
    # re-writing a deleted key makes it visible again
    overlay[b"b"] = b"again"
    assert overlay[b"b"] == b"again"
    del overlay[b"b"]


def test_nothing_reaches_disk_before_commit(store: Store) -> None:
    store.commit(None, {EVM + b"a": b"1", EVM + b"b": b"2"})
    db, overlay = store.pending_evm_db()
    db[b"a"] = b"changed"
    db[b"new"] = b"x"
    del db[b"b"]
    assert db[b"a"] == b"changed" and db[b"new"] == b"x" and not db.exists(b"b")
    committed = store.committed_evm_db()
    assert store.get(EVM, b"a") == b"1" and committed[b"a"] == b"1"
    assert store.get(EVM, b"new") is None and not committed.exists(b"new")
    assert store.get(EVM, b"b") == b"2"
    assert len(overlay) == 3
    written = store.commit(overlay, {INDEX + b"idx": b"i", META + b"gone": None})
    assert written == 5 and len(overlay) == 0
    assert store.get(EVM, b"a") == b"changed" and store.get(EVM, b"new") == b"x"
    assert store.get(EVM, b"b") is None and store.get(INDEX, b"idx") == b"i"


def test_discard_drops_pending_writes(store: Store) -> None:
    db, overlay = store.pending_evm_db()
    db[b"k"] = b"v"
    overlay.discard()
    assert store.commit(overlay) == 0
    assert store.get(EVM, b"k") is None


def test_committed_view_is_read_only(store: Store) -> None:
    view = store.committed_evm_db()
    with pytest.raises(Exception, match="read-only"):
        view[b"k"] = b"v"
    assert store.get(EVM, b"k") is None


class _RecordingDB:
    """Wraps the plyvel handle: records write batches and refuses writes outside them."""

    def __init__(self, real: Any, fail_after: int | None = None) -> None:
        self.real = real
        self.batches: list[list[tuple[str, bytes]]] = []
        self.fail_after = fail_after

    def get(self, key: bytes) -> Any:
        return self.real.get(key)

    def put(self, *a: Any, **kw: Any) -> None:
        raise AssertionError("a write outside the commit batch")

    def delete(self, *a: Any, **kw: Any) -> None:
        raise AssertionError("a write outside the commit batch")

    def write_batch(self, **kw: Any) -> Any:
        assert kw.get("sync") is True and kw.get("transaction") is True
        ops: list[tuple[str, bytes]] = []
        self.batches.append(ops)
        inner = self.real.write_batch(**kw)
        outer = self

        class Batch:
            def __enter__(self) -> Batch:
                inner.__enter__()
                return self

            def __exit__(self, *exc: Any) -> Any:
                return inner.__exit__(*exc)

            def put(self, key: bytes, value: bytes) -> None:
                if outer.fail_after is not None and len(ops) >= outer.fail_after:
                    raise OSError("disk full (simulated)")
                ops.append(("put", key))
                inner.put(key, value)

            def delete(self, key: bytes) -> None:
                ops.append(("delete", key))
                inner.delete(key)

        return Batch()


def test_commit_writes_everything_in_one_batch(store: Store) -> None:
    store.commit(None, {EVM + b"old": b"x"})
    db, overlay = store.pending_evm_db()
    for i in range(50):
        db[b"k%d" % i] = b"v"
    del db[b"old"]
    real = store.db
    store.db = rec = _RecordingDB(real)  # type: ignore[assignment]
    try:
        store.commit(overlay, {INDEX + b"x": b"1"})
    finally:
        store.db = real
    assert len(rec.batches) == 1
    assert len(rec.batches[0]) == 52
    assert ("delete", EVM + b"old") in rec.batches[0]


def test_failed_commit_writes_nothing(store: Store) -> None:
    db, overlay = store.pending_evm_db()
    for i in range(20):
        db[b"k%d" % i] = b"v"
    real = store.db
    store.db = _RecordingDB(real, fail_after=10)  # type: ignore[assignment]
    try:
        with pytest.raises(OSError):
            store.commit(overlay)
    finally:
        store.db = real
    assert all(store.get(EVM, b"k%d" % i) is None for i in range(20))


# -- ChainCore ---------------------------------------------------------------------------------


def make_genesis(**overrides: Any) -> Genesis:
    return parse_genesis(genesis_doc(**overrides))


def mixed_txs(start_nonce: int = 0) -> list[SignedTransactionAPI]:
    """Transfers and RecordStore puts from three senders."""
    out = []
    for i in range(3):
        n = start_nonce
        out.append(decode(sign_transfer(KEYS[i], n, ADDRESSES[5], value=10 + i)))
        out.append(decode(sign_put(KEYS[i], n + 1, b"key%d" % i, b"val%d" % n)))
        out.append(decode(sign_transfer(KEYS[i], n + 2, ADDRESSES[6], value=1, tx_type=0)))
    return out


def build_commit(core: ChainCore, txs: list[SignedTransactionAPI], timestamp: int
                 ) -> BuiltBlock:
    built = core.build(txs, BlockEnv(timestamp=timestamp, proposer=PROPOSER))
    core.commit(built)
    return built


def record(core: ChainCore, key: bytes) -> bytes:
    """RecordStore.records[key] read from committed state (Vyper: keccak(slot ++ key))."""
    state = core.reader().get_vm(core.head()).state
    slot = int.from_bytes(keccak((0).to_bytes(32, "big") + key.ljust(32, b"\0")), "big")
    return bytes(state.get_storage(RECORD_STORE, slot).to_bytes(32, "big"))


def writes(core: ChainCore) -> int:
    """RecordStore.writes (storage slot 1)."""
    return int(core.reader().get_vm(core.head()).state.get_storage(RECORD_STORE, 1))


def test_build_commit_reopen_and_replay(tmp_path: Path) -> None:
    genesis = make_genesis()
    store = Store(tmp_path / "a")
    core = ChainCore(store, genesis)
    genesis_hash = core.genesis_hash()
    blocks = []
    try:
        b1 = build_commit(core, mixed_txs(0), timestamp=10)
        assert b1.skipped == () and len(b1.block.transactions) == 9
        assert all(r.state_root == b"\x01" for r in b1.receipts)  # post-Byzantium: status
        b2 = build_commit(core, mixed_txs(3), timestamp=10)  # same second as its parent
        blocks = [b1.block, b2.block]
        head = core.head()
        assert head.block_number == 2 and head.hash == b2.block.hash
        assert head.base_fee_per_gas == 0
        # indexes: every tx has a record; RecordStore logs are indexed by address
        for n, built in enumerate((b1, b2), start=1):
            for i, t in enumerate(built.block.transactions):
                rec = core.tx_record(bytes(t.hash))
                assert rec is not None and rec.block_number == n and rec.index == i
                assert rec.tx.encode() == t.encode()
        assert list(core.blocks_with_logs_from(RECORD_STORE, 0, 2)) == [1, 2]
        assert record(core, b"key1")[:4] == b"val3" and writes(core) == 6
        head_hash, state_root = head.hash, head.state_root
    finally:
        store.close()

    # reopen: same head, same state, same indexes
    store = Store(tmp_path / "a")
    try:
        core = ChainCore(store, genesis)
        assert core.head().hash == head_hash and core.head().state_root == state_root
        assert core.genesis_hash() == genesis_hash
        assert core.is_committed(bytes(blocks[1].transactions[-1].hash))
    finally:
        store.close()

    # a replica re-executes the blocks on a fresh store and reaches the same head
    replica_store = Store(tmp_path / "b")
    try:
        replica = ChainCore(replica_store, genesis)
        assert replica.genesis_hash() == genesis_hash
        for block in blocks:
            imported = replica.import_block(block)
            assert replica.head().block_number == block.number - 1  # nothing visible yet
            replica.commit(imported)
        assert replica.head().hash == head_hash
        assert replica.head().state_root == state_root
        assert record(replica, b"key2")[:4] == b"val3" and writes(replica) == 6
        rec = replica.tx_record(bytes(blocks[0].transactions[4].hash))
        assert rec is not None and rec.block_number == 1 and rec.index == 4
        assert list(replica.blocks_with_logs_from(RECORD_STORE, 0, 2)) == [1, 2]
    finally:
        replica_store.close()


def test_replica_rejects_a_tampered_block(tmp_path: Path) -> None:
    genesis = make_genesis()
    store = Store(tmp_path / "a")
    try:
        core = ChainCore(store, genesis)
        block = build_commit(core, mixed_txs(0), timestamp=5).block
    finally:
        store.close()
    tampered = block.copy(header=block.header.copy(state_root=b"\x11" * 32))
    replica_store = Store(tmp_path / "b")
    try:
        replica = ChainCore(replica_store, genesis)
        with pytest.raises(ChainError):
            replica.import_block(tampered)
        assert replica.head().block_number == 0
        replica.commit(replica.import_block(block))
        assert replica.head().hash == block.hash
    finally:
        replica_store.close()


def test_bad_nonce_is_skipped_without_retry_and_block_still_builds(store: Store) -> None:
    core = ChainCore(store, make_genesis())
    good = decode(sign_transfer(KEYS[0], 0))
    future = decode(sign_transfer(KEYS[1], 5))
    dup = decode(sign_transfer(KEYS[0], 0, value=7))  # nonce 0 again, after `good`
    built = core.build([good, future, dup], BlockEnv(timestamp=1, proposer=PROPOSER))
    assert [bytes(t.hash) for t in built.block.transactions] == [bytes(good.hash)]
    skipped = {bytes(s.tx.hash): s for s in built.skipped}
    assert set(skipped) == {bytes(future.hash), bytes(dup.hash)}
    assert all(not s.retry and "nonce" in s.reason.lower() for s in skipped.values())
    # nothing visible before commit
    assert core.head().block_number == 0 and not core.is_committed(bytes(good.hash))
    core.commit(built)
    assert core.head().block_number == 1 and core.is_committed(bytes(good.hash))


@pytest.mark.parametrize("kind", ["transfers", "puts"])
def test_blocks_stay_within_gas_target_and_base_fee_stays_zero(store: Store, kind: str) -> None:
    if kind == "transfers":  # each uses exactly its gas limit: two fit under the target
        genesis = make_genesis(gasLimit=100_000, params={"maxBlockGas": 50_000,
                                                         "maxTxGas": 50_000})
        pending = [decode(sign_transfer(KEYS[i % 4], i // 4)) for i in range(12)]
    else:  # large gas limits, much smaller real use
        genesis = make_genesis(gasLimit=1_000_000, params={"maxBlockGas": 500_000,
                                                           "maxTxGas": 500_000})
        pending = [decode(sign_put(KEYS[i % 4], i // 4, b"k%d" % i, b"v", gas=200_000))
                   for i in range(24)]
    core = ChainCore(store, genesis)
    target = genesis.gas_target
    rounds = 0
    while pending:
        rounds += 1
        assert rounds < 30
        built = build_commit(core, pending, timestamp=rounds)
        header = built.block.header
        assert 0 < header.gas_used <= target
        assert header.base_fee_per_gas == 0
        for s in built.skipped:
            assert s.retry and "gas cap" in s.reason
        included = {bytes(t.hash) for t in built.block.transactions}
        pending = [t for t in pending if bytes(t.hash) not in included]
    assert rounds > 1 and core.head().base_fee_per_gas == 0
    if kind == "transfers":
        assert rounds == 6 and core.head().gas_used == 42_000
    # an empty block after full ones: still zero
    assert build_commit(core, [], timestamp=rounds).block.header.base_fee_per_gas == 0


def test_equal_timestamp_accepted_earlier_refused(store: Store) -> None:
    core = ChainCore(store, make_genesis(timestamp=100))
    for _ in range(3):
        build_commit(core, [], timestamp=100)
    assert core.head().block_number == 3 and core.head().timestamp == 100
    with pytest.raises(ChainError, match="before its parent"):
        core.build([], BlockEnv(timestamp=99, proposer=PROPOSER))


def test_equal_timestamp_blocks_import_on_a_replica(tmp_path: Path) -> None:
    genesis = make_genesis()  # timestamp 0
    store = Store(tmp_path / "a")
    try:
        core = ChainCore(store, genesis)
        blocks = [build_commit(core, mixed_txs(0), timestamp=0).block,
                  build_commit(core, [], timestamp=0).block,
                  build_commit(core, mixed_txs(3), timestamp=0).block]
    finally:
        store.close()
    replica_store = Store(tmp_path / "b")
    try:
        replica = ChainCore(replica_store, genesis)
        for block in blocks:
            replica.commit(replica.import_block(block))
        assert replica.head().hash == blocks[-1].hash
    finally:
        replica_store.close()


def test_genesis_mismatch_on_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        ChainCore(store, make_genesis())
    finally:
        store.close()
    store = Store(tmp_path)
    try:
        with pytest.raises(GenesisMismatch, match="different genesis"):
            ChainCore(store, make_genesis(chainId=LOCAL_CHAIN_ID + 1))
        with pytest.raises(GenesisMismatch):
            ChainCore(store, make_genesis(extraData="0x01"))
        ChainCore(store, make_genesis())  # the right one still opens
    finally:
        store.close()


# -- parse_genesis -----------------------------------------------------------------------------

ADDR = ADDRESSES[0]


@pytest.mark.parametrize(("change", "field"), [
    ({"chainId": None}, "chainId"),
    ({"chainId": "abc"}, "chainId"),
    ({"chainId": 0}, "chainId"),
    ({"chainId": True}, "chainId"),
    ({"suite": "gm"}, "suite"),
    ({"timestamp": -1}, "timestamp"),
    ({"gasLimit": 100}, "gasLimit"),
    ({"gasLimit": 1.5}, "gasLimit"),
    ({"extraData": "0x" + "00" * 33}, "extraData"),
    ({"extraData": "zz"}, "extraData"),
    ({"params": []}, "params"),
    ({"params": {"blockIntervalMs": 1}}, "params.blockIntervalMs"),
    ({"params": {"maxTxPerBlock": 0}}, "params.maxTxPerBlock"),
    ({"params": {"heartbeatMs": "soon"}}, "params.heartbeatMs"),
    ({"params": {"blockTime": 1}}, "blockTime"),
    ({"alloc": []}, "alloc"),
    ({"alloc": {"0x1234": {}}}, "alloc[0x1234]"),
    ({"alloc": {ADDR: 5}}, f"alloc[{ADDR}]"),
    ({"alloc": {ADDR: {"balance": "-0x1"}}}, "balance"),
    ({"alloc": {ADDR: {"balance": "0x" + "f" * 65}}}, "balance"),
    ({"alloc": {ADDR: {"nonce": 2**64}}}, "nonce"),
    ({"alloc": {ADDR: {"code": "6000"}}}, "code"),
    ({"alloc": {ADDR: {"code": "0x" + "00" * 24_577}}}, "code"),
    ({"alloc": {ADDR: {"storage": []}}}, "storage"),
    ({"alloc": {ADDR: {"storage": {"0x1": "x"}}}}, "storage[0x1]"),
    ({"authorisedSenders": ADDR}, "authorisedSenders"),
    ({"authorisedSenders": [ADDR, "0x12"]}, "authorisedSenders[1]"),
    ({"chainid": 1}, "chainid"),
])
def test_parse_genesis_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    doc = genesis_doc()
    doc.update(change)
    if change.get("chainId", 0) is None:
        del doc["chainId"]
    with pytest.raises(GenesisError) as info:
        parse_genesis(doc)
    assert field in str(info.value)


def test_parse_genesis_rejects_unknown_account_fields() -> None:
    """A typo in an alloc entry ("balanse") must not silently allocate a zero balance."""
    doc = genesis_doc()
    doc["alloc"] = {ADDR: {"balanse": "0x100"}}
    with pytest.raises(GenesisError, match="balanse"):
        parse_genesis(doc)


def test_parse_genesis_rejects_duplicate_addresses() -> None:
    """The same account written twice (different hex case) must not silently pick one."""
    doc = genesis_doc()
    doc["alloc"] = {ADDR: {"balance": "0x1"}, ADDR.lower(): {"balance": "0x2"}}
    with pytest.raises(GenesisError, match="alloc"):
        parse_genesis(doc)


def test_parse_genesis_digest_is_canonical() -> None:
    doc = genesis_doc()
    reordered = json.loads(json.dumps(dict(reversed(list(doc.items())))))
    a, b = parse_genesis(doc), parse_genesis(reordered)
    assert a.digest == b.digest and a == b
    assert parse_genesis(genesis_doc(timestamp=1)).digest != a.digest


_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**300), st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["0x", "0x0", "0x1", "0xzz", "0x" + "ff" * 40, "123", ADDR, ADDR.lower(),
                     "standard", "sm", "-1"]),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12,
)
_genesis_keys = st.sampled_from(["chainId", "suite", "timestamp", "gasLimit", "extraData",
                                 "params", "alloc", "authorisedSenders", "validators",
                                 "members", "name", "bogus"])
_param_docs = st.dictionaries(st.sampled_from(["blockIntervalMs", "maxTxPerBlock",
                                               "heartbeatMs", "x"]), _json, max_size=3)
_account_docs = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"balance": st.sampled_from(["0x1", "0x0", 5, "10"])}),
    st.dictionaries(st.sampled_from(["balance", "nonce", "code", "storage"]),
                    _json | st.dictionaries(st.text(max_size=4), _json, max_size=2),
                    max_size=4),
)
_alloc_docs = st.dictionaries(st.sampled_from([ADDR, ADDR.lower(), ADDRESSES[1], "0x12", "x"]),
                              _account_docs | _json, max_size=3)
_genesis_docs = st.dictionaries(_genesis_keys, _json, max_size=9).flatmap(
    lambda d: st.fixed_dictionaries({}, optional={
        "params": _param_docs, "alloc": _alloc_docs}).map(lambda extra: {**d, **extra}))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_genesis_docs, _json))
def test_parse_genesis_only_raises_genesis_error(doc: Any) -> None:
    try:
        genesis = parse_genesis(doc)
    except GenesisError as exc:
        assert str(exc)
        return
    assert 1 <= genesis.chain_id <= 2**53
    assert genesis.gas_target == genesis.gas_limit // 2


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_alloc_docs)
def test_parse_genesis_alloc_only_raises_genesis_error(alloc: dict[str, Any]) -> None:
    doc = genesis_doc()
    doc["alloc"] = alloc
    try:
        genesis = parse_genesis(doc)
    except GenesisError as exc:
        assert str(exc)
        return
    assert len({a for a, _ in genesis.alloc}) == len(genesis.alloc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_genesis_keys.filter(lambda k: k != "chainId"), _json, max_size=4),
       st.fixed_dictionaries({}, optional={"params": _param_docs, "alloc": _alloc_docs}))
def test_parse_genesis_over_a_valid_base_only_raises_genesis_error(
        change: dict[str, Any], nested: dict[str, Any]) -> None:
    doc = genesis_doc()
    doc.update(change)
    doc.update(nested)
    try:
        parse_genesis(doc)
    except GenesisError as exc:
        assert str(exc)


def test_the_tx_index_serves_receipts_bloom_included_and_py_evm_keeps_no_lookup(
        tmp_path: Path) -> None:
    """The node's own index replaces py-evm's hash-to-block lookup, and its receipts (stored
    without their bloom) equal the block's receipts byte for byte, logs and blooms included."""
    from eth.db.schema import SchemaV1
    from eth.exceptions import TransactionNotFound

    store = Store(tmp_path / "db")
    try:
        core = ChainCore(store, make_genesis())
        built = build_commit(core, mixed_txs(0), timestamp=10)
        assert any(r.logs for r in built.receipts) and any(not r.logs for r in built.receipts)
        for tx, receipt in zip(built.block.transactions, built.receipts, strict=True):
            rec = core.tx_record(bytes(tx.hash))
            assert rec is not None and rec.receipt.encode() == receipt.encode()
            assert rec.receipt.bloom == receipt.bloom
            lookup = SchemaV1.make_transaction_hash_to_block_lookup_key(tx.hash)
            assert store.get(EVM, lookup) is None
            with pytest.raises(TransactionNotFound, match="tx_record"):
                core.chaindb.get_transaction_index(tx.hash)
        # the receipts as py-evm keeps them (the block's receipt trie) are unchanged
        block = core.block_by_header(core.head())
        assert [r.encode() for r in core.receipts(block)] == [
            r.encode() for r in built.receipts]
    finally:
        store.close()
