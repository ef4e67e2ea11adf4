"""Unit and stateful property tests of ``yilian.node.mempool.Mempool`` (fake account view):
the pool's own rules. The rules before it (``admission.check_transaction``) are tested in
tests/test_admission.py."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from eth.abc import SignedTransactionAPI
from eth_utils import to_canonical_address
from helpers import ADDRESSES, KEYS, make_node, produce_all, sign
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from yilian.network_configs.local import LOCAL_CHAIN_ID
from yilian.node.mempool import AccountView, Mempool, MempoolLimits, Rejected, decode_transaction
from yilian.node.storage import MEMPOOL

SENDERS = [bytes(to_canonical_address(a)) for a in ADDRESSES]


@functools.cache
def raw_tx(sender: int, nonce: int, fee: int = 0, tip: int = 0, value: int = 1,
           gas: int = 21_000, key: str | None = None) -> bytes:
    """A signed type-2 transfer from dev account ``sender`` (cached: signing is slow)."""
    return sign(key or KEYS[sender], {
        "type": 2, "chainId": LOCAL_CHAIN_ID, "nonce": nonce, "to": ADDRESSES[-1],
        "value": value, "gas": gas, "maxFeePerGas": fee, "maxPriorityFeePerGas": tip,
    })


def tx(sender: int, nonce: int, **kw: int) -> SignedTransactionAPI:
    return decode_transaction(raw_tx(sender, nonce, **kw), chain_id=LOCAL_CHAIN_ID,
                              max_bytes=1 << 20)


class FakeChain:
    """The committed account state the mempool consults (``account`` callable)."""

    def __init__(self, nonces: dict[bytes, int] | None = None, balance: int = 10**24) -> None:
        self.nonces = dict(nonces or {})
        self.balance = balance
        self.calls = 0

    def __call__(self, address: bytes) -> AccountView:
        self.calls += 1
        return AccountView(nonce=self.nonces.get(address, 0), balance=self.balance)


def make_pool(chain: FakeChain | None = None, **limits: int) -> tuple[Mempool, FakeChain]:
    chain = chain or FakeChain()
    pool = Mempool(account=chain, limits=MempoolLimits(**limits))
    return pool, chain


def pool_add(pool: Mempool, raw: bytes) -> SignedTransactionAPI:
    t = decode_transaction(raw, chain_id=LOCAL_CHAIN_ID, max_bytes=1 << 20)
    pool.admit(t, raw)
    return t


def add(pool: Mempool, sender: int, nonce: int, **kw: int) -> SignedTransactionAPI:
    return pool_add(pool, raw_tx(sender, nonce, **kw))


def rejected(pool: Mempool, raw: bytes) -> Rejected:
    with pytest.raises(Rejected) as info:
        pool_add(pool, raw)
    return info.value


def order(txs: list[SignedTransactionAPI]) -> list[tuple[int, int]]:
    return [(SENDERS.index(bytes(t.sender)), t.nonce) for t in txs]


# -- selection ---------------------------------------------------------------------------------


def test_per_sender_nonce_order_regardless_of_arrival() -> None:
    pool, _ = make_pool()
    for nonce in (2, 0, 3, 1):
        add(pool, 0, nonce)
    assert order(pool.select(10)) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert order(pool.select(2)) == [(0, 0), (0, 1)]


def test_senders_interleaved_by_arrival() -> None:
    pool, _ = make_pool()
    add(pool, 0, 0)
    add(pool, 1, 0)
    add(pool, 0, 1)
    add(pool, 2, 0)
    add(pool, 1, 1)
    add(pool, 0, 2)
    assert order(pool.select(10)) == [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]


def test_next_tx_of_a_sender_waits_for_its_own_arrival() -> None:
    pool, _ = make_pool()
    add(pool, 0, 0)
    add(pool, 1, 0)
    add(pool, 1, 1)
    add(pool, 0, 1)  # arrived after sender 1's second tx
    assert order(pool.select(10)) == [(0, 0), (1, 0), (1, 1), (0, 1)]


def test_gap_stops_selection_for_that_sender_until_filled() -> None:
    pool, _ = make_pool()
    add(pool, 0, 0)
    add(pool, 0, 2)
    add(pool, 0, 3)
    add(pool, 1, 1)  # sender 1's next nonce is 0: nothing of it is ready
    assert order(pool.select(10)) == [(0, 0)]
    add(pool, 0, 1)
    assert order(pool.select(10)) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    add(pool, 1, 0)
    assert order(pool.select(10))[-2:] == [(1, 0), (1, 1)]


def test_selection_starts_at_the_committed_nonce() -> None:
    pool, _ = make_pool(FakeChain({SENDERS[0]: 5}))
    add(pool, 0, 6)
    assert pool.select(10) == []
    assert not pool.has_ready.is_set()
    add(pool, 0, 5)
    assert pool.has_ready.is_set()
    assert order(pool.select(10)) == [(0, 5), (0, 6)]


# -- replacement -------------------------------------------------------------------------------


def test_replacement_rule() -> None:
    pool, _ = make_pool()
    first = add(pool, 0, 0, fee=10, tip=2)
    # lower fee cap or lower tip: refused, the pending one stays
    for kw in ({"fee": 9, "tip": 2}, {"fee": 10, "tip": 1}, {"fee": 20, "tip": 1}):
        err = rejected(pool, raw_tx(0, 0, **kw))
        assert err.reason == "underpriced_replacement" and "underpriced" in err.message
    assert pool.get(bytes(first.hash)) is not None and len(pool) == 1
    # equal caps (different content) replace
    equal = add(pool, 0, 0, fee=10, tip=2, value=2)
    assert bytes(first.hash) not in pool and bytes(equal.hash) in pool and len(pool) == 1
    # higher caps replace
    higher = add(pool, 0, 0, fee=11, tip=3)
    assert bytes(equal.hash) not in pool and bytes(higher.hash) in pool and len(pool) == 1
    assert [bytes(t.hash) for t in pool.select(10)] == [bytes(higher.hash)]
    # the very same transaction again is "known", not a replacement
    assert rejected(pool, raw_tx(0, 0, fee=11, tip=3)).reason == "known"


def test_zero_fee_replacement_newer_wins() -> None:
    pool, _ = make_pool()
    add(pool, 0, 0, value=1)
    newer = add(pool, 0, 0, value=2)
    assert [bytes(t.hash) for t in pool.select(10)] == [bytes(newer.hash)]


# -- admission rules and bounds ----------------------------------------------------------------


def test_max_size_bound() -> None:
    pool, _ = make_pool(max_size=3)
    add(pool, 0, 0)
    add(pool, 1, 0)
    add(pool, 2, 0)
    err = rejected(pool, raw_tx(3, 0))
    assert err.reason == "mempool_full" and "full" in err.message
    # a replacement does not grow the pool, so it is still admitted
    add(pool, 0, 0, value=5)
    assert len(pool) == 3


def test_max_per_sender_bound() -> None:
    pool, _ = make_pool(max_per_sender=2)
    add(pool, 0, 0)
    add(pool, 0, 1)
    err = rejected(pool, raw_tx(0, 2))
    assert err.reason == "sender_limit" and "limit 2" in err.message
    add(pool, 1, 0)  # other senders are not affected
    add(pool, 0, 1, value=7)  # nor replacements
    assert len(pool) == 3


def test_max_nonce_gap_bound() -> None:
    pool, _ = make_pool(FakeChain({SENDERS[0]: 4}), max_nonce_gap=3)
    add(pool, 0, 7)  # exactly max_nonce_gap ahead
    err = rejected(pool, raw_tx(0, 8))
    assert err.reason == "nonce_too_high" and "too far ahead" in err.message
    err = rejected(pool, raw_tx(0, 3))
    assert err.reason == "nonce_too_low" and "nonce too low" in err.message


# -- commit ------------------------------------------------------------------------------------


def test_committed_removes_included_and_stale() -> None:
    pool, chain = make_pool()
    t0, t1, t2 = (add(pool, 0, n) for n in range(3))
    u0 = add(pool, 1, 0)
    u1 = add(pool, 1, 1)
    # the block included t0, t1 and a different nonce-0 tx of sender 1 (e.g. from a peer)
    foreign = tx(1, 0, value=99)
    chain.nonces.update({SENDERS[0]: 2, SENDERS[1]: 1})
    removed = pool.committed([t0, t1, foreign])
    assert set(removed) == {bytes(t0.hash), bytes(t1.hash), bytes(u0.hash)}
    assert len(removed) == 3
    assert len(pool) == 2 and bytes(t2.hash) in pool and bytes(u1.hash) in pool
    assert order(pool.select(10)) == [(0, 2), (1, 1)]
    assert pool.pending_nonce(SENDERS[0]) == 3


def test_committed_drops_never_executable() -> None:
    pool, _ = make_pool()
    t0 = add(pool, 0, 0)
    t1 = add(pool, 0, 1)
    removed = pool.committed([], [t0])
    assert removed == [bytes(t0.hash)]
    assert bytes(t0.hash) not in pool and bytes(t1.hash) in pool
    assert pool.select(10) == []  # nonce 0 is gone, nonce 1 waits
    assert pool.pending_nonce(SENDERS[0]) == 0
    # dropping something unknown is harmless
    assert pool.committed([], [tx(2, 0)]) == []


def test_pending_nonce() -> None:
    pool, _ = make_pool(FakeChain({SENDERS[0]: 3}))
    assert pool.pending_nonce(SENDERS[0]) == 3
    assert pool.pending_nonce(SENDERS[1]) == 0
    add(pool, 0, 3)
    add(pool, 0, 4)
    add(pool, 0, 6)
    assert pool.pending_nonce(SENDERS[0]) == 5
    add(pool, 0, 5)
    assert pool.pending_nonce(SENDERS[0]) == 7


# -- the node's mempool journal ----------------------------------------------------------------


def test_replaced_transaction_leaves_the_journal(tmp_path: Path) -> None:
    """A replaced transaction must not come back: the journal holds only admitted ones, so a
    restart cannot resurrect the older transaction in place of its replacement."""
    # deterministic signatures: pick two same-nonce txs whose journal (hash) order would
    # replay the old one after the new one
    old_raw = new_raw = b""
    for value in range(1, 50):
        old_raw, new_raw = raw_tx(0, 0, value=value), raw_tx(0, 0, value=value + 1000)
        if tx(0, 0, value=value).hash > tx(0, 0, value=value + 1000).hash:
            break
    node = make_node(tmp_path)
    try:
        old_hash = node.submit(old_raw)
        new_hash = node.submit(new_raw)
        assert old_hash not in node.mempool and new_hash in node.mempool
        assert node.store.get(MEMPOOL, new_hash) == new_raw
        journal_has_old = node.store.get(MEMPOOL, old_hash) is not None
    finally:
        node.stop()
    node = make_node(tmp_path)
    try:
        pending = [bytes(t.hash) for t in node.mempool.select(10)]
        assert pending == [new_hash], "a restart brought back the replaced transaction"
        assert not journal_has_old, "the replaced transaction is still in the mempool journal"
    finally:
        node.stop()


def test_journal_is_emptied_by_commit(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    try:
        hashes = [node.submit(raw_tx(0, n)) for n in range(3)]
        assert all(node.store.get(MEMPOOL, h) for h in hashes)
        block = produce_all(node)
        assert block is not None and len(block.block.transactions) == 3
        assert list(node.store.iterate(MEMPOOL)) == []
        assert len(node.mempool) == 0
    finally:
        node.stop()


# -- stateful property test --------------------------------------------------------------------

N_SENDERS = 3
MAX_NONCE = 7
# (fee cap, tip, value): several fee levels and equal-fee twins with different content
VARIANTS = [(0, 0, 1), (0, 0, 2), (5, 1, 1), (5, 2, 1), (3, 3, 1), (5, 1, 3)]
LIMITS = MempoolLimits(max_size=9, max_per_sender=4, max_nonce_gap=3)


class MempoolMachine(RuleBasedStateMachine):
    """Random add / select / commit / drop against a model of what must be pending."""

    @initialize(start=st.lists(st.integers(0, 2), min_size=N_SENDERS, max_size=N_SENDERS))
    def setup(self, start: list[int]) -> None:
        self.chain = FakeChain({SENDERS[i]: n for i, n in enumerate(start)})
        self.pool = Mempool(account=self.chain, limits=LIMITS)
        # model: (sender index, nonce) -> (hash, fee, tip)
        self.pending: dict[tuple[int, int], tuple[bytes, int, int]] = {}

    def _floor(self, s: int) -> int:
        return self.chain.nonces[SENDERS[s]]

    @rule(s=st.integers(0, N_SENDERS - 1), nonce=st.integers(0, MAX_NONCE),
          variant=st.sampled_from(VARIANTS))
    def add(self, s: int, nonce: int, variant: tuple[int, int, int]) -> None:
        fee, tip, value = variant
        t = tx(s, nonce, fee=fee, tip=tip, value=value)
        h = bytes(t.hash)
        floor = self._floor(s)
        old = self.pending.get((s, nonce))
        if old is not None and old[0] == h:
            expected = "known"
        elif nonce < floor:
            expected = "nonce_too_low"
        elif nonce > floor + LIMITS.max_nonce_gap:
            expected = "nonce_too_high"
        elif old is not None:
            expected = "underpriced_replacement" if fee < old[1] or tip < old[2] else ""
        elif len(self.pending) >= LIMITS.max_size:
            expected = "mempool_full"
        elif sum(1 for (o, _) in self.pending if o == s) >= LIMITS.max_per_sender:
            expected = "sender_limit"
        else:
            expected = ""
        try:
            pool_add(self.pool, raw_tx(s, nonce, fee=fee, tip=tip, value=value))
        except Rejected as exc:
            assert exc.reason == expected, (exc.reason, expected)
        else:
            assert expected == "", f"admitted, expected {expected}"
            self.pending[(s, nonce)] = (h, fee, tip)

    def _expected_ready(self) -> dict[int, int]:
        ready = {}
        for s in range(N_SENDERS):
            n = self._floor(s)
            while (s, n) in self.pending:
                n += 1
            ready[s] = n - self._floor(s)
        return ready

    def _check_selection(self, selected: list[SignedTransactionAPI], max_count: int) -> None:
        keys = order(selected)
        assert len(keys) == len(set(keys)), "select returned the same (sender, nonce) twice"
        assert len(selected) <= max_count
        per_sender: dict[int, list[int]] = {}
        for s, n in keys:
            per_sender.setdefault(s, []).append(n)
        for s, nonces in per_sender.items():
            start = self._floor(s)
            assert nonces == list(range(start, start + len(nonces))), (s, start, nonces)
        for t, key in zip(selected, keys, strict=True):
            assert self.pending[key][0] == bytes(t.hash)
        expected_total = sum(self._expected_ready().values())
        assert len(selected) == min(max_count, expected_total)

    @rule(max_count=st.integers(1, 12))
    def select(self, max_count: int) -> None:
        self._check_selection(self.pool.select(max_count), max_count)

    def _apply_block(self, included: list[SignedTransactionAPI]) -> set[bytes]:
        """Advance the fake chain past ``included``; return what the model forgets."""
        removed: set[bytes] = set()
        touched = set()
        for t in included:
            s = SENDERS.index(bytes(t.sender))
            touched.add(s)
            self.chain.nonces[SENDERS[s]] = max(self._floor(s), t.nonce + 1)
        for key in [k for k in self.pending if k[0] in touched and k[1] < self._floor(k[0])]:
            removed.add(self.pending.pop(key)[0])
        return removed

    @rule(max_count=st.integers(1, 12), take=st.integers(0, 12))
    def commit_selection(self, max_count: int, take: int) -> None:
        included = self.pool.select(max_count)[:take]
        expected = self._apply_block(included)
        removed = self.pool.committed(included)
        assert len(removed) == len(set(removed))
        assert set(removed) == expected

    @rule(s=st.integers(0, N_SENDERS - 1), variant=st.sampled_from(VARIANTS))
    def commit_foreign(self, s: int, variant: tuple[int, int, int]) -> None:
        """A block includes a tx of ``s`` at its next nonce that may not be the pending one."""
        fee, tip, value = variant
        nonce = self._floor(s)
        if nonce > MAX_NONCE:
            return
        foreign = tx(s, nonce, fee=fee, tip=tip, value=value)
        expected = self._apply_block([foreign])
        assert set(self.pool.committed([foreign])) == expected

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.pending)))
        h = self.pending.pop(key)[0]
        victim = self.pool.get(h)
        assert victim is not None
        assert self.pool.committed([], [victim]) == [h]

    @invariant()
    def sizes_match(self) -> None:
        if not hasattr(self, "pool"):
            return
        assert len(self.pool) == len({h for h, _, _ in self.pending.values()})
        for h, _, _ in self.pending.values():
            assert h in self.pool and self.pool.get(h) is not None

    @invariant()
    def pending_nonces(self) -> None:
        if not hasattr(self, "pool"):
            return
        for s, ready in self._expected_ready().items():
            assert self.pool.pending_nonce(SENDERS[s]) == self._floor(s) + ready

    @invariant()
    def full_selection(self) -> None:
        if not hasattr(self, "pool"):
            return
        self._check_selection(self.pool.select(1000), 1000)


MempoolMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_mempool_state_machine = MempoolMachine.TestCase
