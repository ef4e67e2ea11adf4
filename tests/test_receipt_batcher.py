"""The receipt batcher (node/receipt_batcher.py): concurrent single reads share one
``record_access_many`` transaction, and a refused item never refuses the others.

A fake center account plays the chain: it records a batch all or nothing, reverting
with ``item <i>: <reason>`` for its first refused item (or, as after a race inside a
block, with no item named), and a single ``record_access`` on its own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.node import receipt_batcher
from yilian.node.receipt_batcher import ReceiptBatcher
from yilian.node.tx_outcome import TxFailed


@dataclass
class FakeAccount:
    """The chain, as far as the batcher sees it: ``bad`` items are refused."""

    bad: set[int] = field(default_factory=set)
    hide_item: bool = False  # revert batches without naming the item
    fail_all: str | None = None  # every send fails with this reason
    recorded: list[int] = field(default_factory=list)
    sends: list[tuple[str, list[int], int]] = field(default_factory=list)

    async def send(self, to: bytes, data: Any, timeout: float = 30.0,
                   gas: int = 0) -> Any:
        fn, items = data
        self.sends.append((fn, [a[0] for a in items], gas))
        name = f"tx{len(self.sends)}"
        await asyncio.sleep(0.001)
        if self.fail_all:
            raise TxFailed(self.fail_all, "the chain is stalled")
        for i, access in enumerate(items):
            if access[0] in self.bad:
                if fn == "record_access":
                    raise TxFailed("reverted", f"bad {access[0]}")
                raise TxFailed("reverted", "transaction reverted" if self.hide_item
                               else f"item {i}: bad {access[0]}")
        self.recorded += [a[0] for a in items]
        return name


def encode(fn: str, *args: Any) -> Any:
    return (fn, list(args[0]) if fn == "record_access_many" else [args])


def access(n: int) -> tuple[int, bytes, int, bytes, bytes]:
    return (n, bytes(32), 1, bytes(32), n.to_bytes(32, "big"))


async def _record_all(batcher: ReceiptBatcher, ids: list[int]) -> list[Any]:
    return await asyncio.gather(*(batcher.record(access(n)) for n in ids),
                                return_exceptions=True)


def run(account: FakeAccount, ids: list[int], max_items: int = 32) -> list[Any]:
    batcher = ReceiptBatcher(account, encode, max_items)  # type: ignore[arg-type]
    return asyncio.run(_record_all(batcher, ids))


def test_concurrent_reads_share_one_transaction() -> None:
    account = FakeAccount()
    out = run(account, list(range(1, 11)))
    assert out == ["tx1"] * 10
    assert account.sends == [("record_access_many", list(range(1, 11)), 60_000 + 64_000 * 10)]


def test_a_batch_holds_at_most_the_networks_batch_size() -> None:
    account = FakeAccount()
    out = run(account, list(range(1, 41)), max_items=32)
    assert sorted(len(items) for _, items, _ in account.sends) == [8, 32]
    assert sorted(account.recorded) == list(range(1, 41)) and len(set(out)) == 2


def test_one_refused_item_is_refused_alone() -> None:
    account = FakeAccount(bad={3})
    out = run(account, [1, 2, 3, 4])
    assert isinstance(out[2], TxFailed) and out[2].reason == "reverted"
    assert str(out[2]) == "bad 3"
    assert sorted(account.recorded) == [1, 2, 4]
    assert all(isinstance(o, str) for i, o in enumerate(out) if i != 2)


def test_a_revert_naming_no_item_settles_each_on_its_own() -> None:
    account = FakeAccount(bad={2}, hide_item=True)
    out = run(account, [1, 2, 3])
    assert [isinstance(o, TxFailed) for o in out] == [False, True, False]
    assert str(out[1]) == "bad 2"  # its own record_access named why
    assert sorted(account.recorded) == [1, 3]


def test_other_failures_reach_every_waiter() -> None:
    account = FakeAccount(fail_all="no_quorum")
    out = run(account, [1, 2, 3])
    assert [o.reason for o in out] == ["no_quorum"] * 3


def test_a_network_fitting_one_receipt_sends_single_transactions() -> None:
    one = FakeAccount()
    assert run(one, [1, 2], max_items=1) == ["tx1", "tx2"]
    assert [fn for fn, _, _ in one.sends] == ["record_access", "record_access"]


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.integers(1, 60), min_size=1, max_size=45, unique=True),
       bad=st.sets(st.integers(1, 60), max_size=6), hide=st.booleans(),
       max_items=st.integers(1, 32), linger=st.sampled_from([0.0, 0.002]))
def test_every_read_is_recorded_once_or_refused_alone(
        ids: list[int], bad: set[int], hide: bool, max_items: int, linger: float) -> None:
    """Whatever the mix: each good read gets its transaction and is recorded exactly
    once; each bad one gets its own refusal; no batch is larger than allowed."""
    account = FakeAccount(bad=bad, hide_item=hide)
    with mock.patch.object(receipt_batcher, "LINGER_S", linger):
        out = run(account, ids, max_items)
    for n, result in zip(ids, out, strict=True):
        if n in bad:
            assert isinstance(result, TxFailed) and str(result) == f"bad {n}"
        else:
            assert isinstance(result, str), result
    assert sorted(account.recorded) == sorted(n for n in ids if n not in bad)
    assert max(len(items) for _, items, _ in account.sends) <= max_items
