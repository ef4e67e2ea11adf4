"""The small state machines behind waiting calls, without a node: commit waiters (futures
resolved from another thread), the wait budget (a hypothesis state machine against a
model) and the liveness judgement (quorum from connected voting power, stall clock)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from yilian.api.auth import ApiError
from yilian.api.waiting import WaitBudget
from yilian.node.commit_waiters import CommitWaiters
from yilian.node.liveness import Liveness

H1, H2 = b"\x01" * 32, b"\x02" * 32

# -- commit waiters -----------------------------------------------------------------------------


def test_a_commit_from_another_thread_wakes_every_waiter_of_that_hash_only() -> None:
    waiters = CommitWaiters()
    committed: set[bytes] = set()

    async def scenario() -> list[bool]:
        tasks = [asyncio.ensure_future(waiters.wait(h, 30, committed.__contains__))
                 for h in (H1, H1, H2)]
        while len(waiters) < 3:
            await asyncio.sleep(0)

        def commit() -> None:  # as the block producer does: mark committed, then resolve
            committed.add(H1)
            waiters.resolve([H1])

        thread = threading.Thread(target=commit)
        thread.start()
        await asyncio.wait(tasks[:2])
        thread.join()
        assert not tasks[2].done() and len(waiters) == 1
        tasks[2].cancel()
        return [t.result() for t in tasks[:2]]

    assert asyncio.run(scenario()) == [True, True]
    assert len(waiters) == 0  # the cancelled waiter removed itself


def test_a_commit_between_registration_and_the_check_is_not_lost() -> None:
    waiters = CommitWaiters()
    calls = []

    def committed_on_second_look(h: bytes) -> bool:
        calls.append(h)
        return False  # the store says "not yet"; the commit resolves the future instead

    async def scenario() -> bool:
        task = asyncio.ensure_future(waiters.wait(H1, 30, committed_on_second_look))
        while len(waiters) < 1:
            await asyncio.sleep(0)
        waiters.resolve([H1])
        return await task

    assert asyncio.run(scenario()) is True
    assert calls == [H1]


def test_a_timeout_answers_false_and_leaves_nothing_behind() -> None:
    waiters = CommitWaiters()
    assert asyncio.run(waiters.wait(H1, 0.01, lambda h: False)) is False
    assert len(waiters) == 0
    assert asyncio.run(waiters.wait(H1, 0.01, lambda h: True)) is True  # already committed


def test_resolving_a_waiter_whose_loop_is_closed_does_not_raise() -> None:
    waiters = CommitWaiters()
    loop = asyncio.new_event_loop()
    future: asyncio.Future[None] = loop.create_future()
    waiters._by_hash[H1] = {future}
    loop.close()
    waiters.resolve([H1])
    assert len(waiters) == 0


# -- wait budget --------------------------------------------------------------------------------

ACCOUNTS = [bytes([i]) * 20 for i in range(3)]
ADDRESSES = ["10.0.0.1", "10.0.0.2", None]


class BudgetMachine(RuleBasedStateMachine):
    """Acquire and release slots in any order; the budget refuses exactly when the model
    says a bound is reached, with 503 for the total and 429 for a caller."""

    def __init__(self) -> None:
        super().__init__()
        self.budget = WaitBudget(per_account=2, per_ip=3, total=5, per_operator=4)
        self.held: list[tuple[Any, bytes | None, str | None]] = []

    def _model_refusal(self, account: bytes | None, ip: str | None,
                       center: bool) -> int | None:
        if len(self.held) >= 5:
            return 503
        by_account = Counter(a for _, a, _ in self.held if a is not None)
        by_ip = Counter(i for _, _, i in self.held if i is not None)
        if account is not None and by_account[account] >= (4 if center else 2):
            return 429
        if ip is not None and by_ip[ip] >= 3:
            return 429
        return None

    @rule(account=st.sampled_from([*ACCOUNTS, None]), ip=st.sampled_from([*ADDRESSES, None]),
          center=st.booleans())
    def acquire(self, account: bytes | None, ip: str | None, center: bool) -> None:
        """``center``: a center operator's publish/remove (a higher per-account bound)."""
        expected = self._model_refusal(account, ip, center)
        slot = self.budget.slot(account, ip, operator=center)
        try:
            slot.__enter__()
        except ApiError as exc:
            assert expected == exc.status
            assert exc.reason == ("waiting_full" if expected == 503 else "too_many_waiting")
            return
        assert expected is None
        self.held.append((slot, account, ip))

    @precondition(lambda self: self.held)
    @rule(index=st.integers(min_value=0))
    def release(self, index: int) -> None:
        slot, _, _ = self.held.pop(index % len(self.held))
        slot.__exit__(None, None, None)

    @invariant()
    def counts_match(self) -> None:
        assert self.budget.open == len(self.held)


TestBudgetMachine = BudgetMachine.TestCase
TestBudgetMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)


# -- liveness -----------------------------------------------------------------------------------


def fake_node(connected: list[bytes], powers: list[int], *, observer: bool = False,
              ready: bool = False) -> Any:
    keys = [bytes([i + 1]) * 32 for i in range(len(powers))]
    validators = [SimpleNamespace(node_key=k, power=p) for k, p in zip(keys, powers,
                                                                       strict=True)]
    has_ready = threading.Event()
    if ready:
        has_ready.set()
    driver = SimpleNamespace(
        pm=SimpleNamespace(connected_peers=lambda: [keys[i] for i in connected]),
        public_key=b"\xee" * 32 if observer else keys[0],
        address=None if observer else b"\x00" * 20)
    return SimpleNamespace(genesis=SimpleNamespace(validators=validators), consensus=driver,
                           mempool=SimpleNamespace(has_ready=has_ready),
                           core=SimpleNamespace(head=lambda: SimpleNamespace(block_number=7)))


@pytest.mark.parametrize(("connected", "powers", "observer", "quorum"), [
    ([1, 2, 3], [1, 1, 1, 1], False, True),
    ([1, 2], [1, 1, 1, 1], False, True),  # 3 of 4 > 2/3
    ([1], [1, 1, 1, 1], False, False),  # 2 of 4
    ([], [1, 1, 1, 1], False, False),
    ([1, 2, 3], [1, 1, 1, 1], True, True),  # an observer counts only its peers
    ([1, 2], [1, 1, 1, 1], True, False),  # 2 of 4 without itself
    ([1], [3, 1, 1, 1], False, False),  # 4 of 6 is exactly 2/3: not enough
    ([1, 2], [3, 1, 1, 1], False, True),  # 5 of 6
])
def test_quorum_is_more_than_two_thirds_of_the_connected_voting_power(
        connected: list[int], powers: list[int], observer: bool, quorum: bool) -> None:
    node = fake_node(connected, powers, observer=observer)
    health = Liveness(node, node.consensus).check()
    own = 0 if observer else powers[0]
    power = own + sum(powers[i] for i in connected)
    assert (health.voting_power, health.total_power) == (power, sum(powers))
    assert health.quorum is (3 * power > 2 * sum(powers))
    assert health.quorum is quorum
    assert health.stalled is not health.quorum
    if not health.quorum:
        assert [p.reason for p in health.problems] == ["no_quorum"]


def test_a_stall_is_reported_only_while_executable_transactions_wait_too_long() -> None:
    node = fake_node([1, 2, 3], [1, 1, 1, 1], ready=False)
    liveness = Liveness(node, node.consensus, stall_after_s=0.05)
    assert not liveness.check().stalled  # idle: never stalled
    node.mempool.has_ready.set()
    assert not liveness.check().stalled  # just observed
    time.sleep(0.1)
    health = liveness.check()
    assert [p.reason for p in health.problems] == ["no_commit"]
    liveness.committed()  # a block: the clock restarts
    assert not liveness.check().stalled
    node.mempool.has_ready.clear()
    time.sleep(0.1)
    assert not liveness.check().stalled
    assert liveness.check().last_commit_age_s is not None
