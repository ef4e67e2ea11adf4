"""The build budget leaves time to finalise the block (yilian.node.build_budget)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from yilian.node.build_budget import (
    ALPHA,
    MAX_SAMPLE_S,
    FinalisationEstimate,
    room_for_one_more,
)


def test_a_budget_at_a_tenth_of_a_second_per_tx_takes_what_it_can_finalise() -> None:
    """0.35 s of budget; each transaction takes 0.05 s to run and 0.05 s to finalise."""
    est = FinalisationEstimate(per_tx_s=0.05)
    now, deadline, included = 0.0, 0.35, 0
    while room_for_one_more(now, deadline, included, est):
        now += 0.05
        included += 1
    assert included == 3
    assert now + est.per_tx_s * included <= deadline  # finalising still ends in time


def test_the_first_transaction_is_always_tried_and_no_deadline_means_no_limit() -> None:
    est = FinalisationEstimate(per_tx_s=10.0)
    assert room_for_one_more(0.0, 1.0, 0, est)
    assert not room_for_one_more(2.0, 1.0, 0, est)  # already past the deadline
    assert room_for_one_more(1e9, None, 10**6, est)


@given(st.floats(0, 10), st.integers(1, 5000), st.floats(0, 0.01))
def test_one_block_moves_the_estimate_a_bounded_step(seconds: float, txs: int,
                                                     start: float) -> None:
    est = FinalisationEstimate(per_tx_s=start)
    est.learn(seconds, txs)
    sample = min(seconds / txs, MAX_SAMPLE_S)
    assert abs(est.per_tx_s - (start + ALPHA * (sample - start))) < 1e-12
    assert est.per_tx_s <= max(start, MAX_SAMPLE_S)


def test_empty_blocks_and_nonsense_teach_nothing() -> None:
    est = FinalisationEstimate(per_tx_s=0.001)
    est.learn(5.0, 0)
    est.learn(-1.0, 10)
    assert est.per_tx_s == 0.001
