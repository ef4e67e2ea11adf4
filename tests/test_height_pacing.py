"""``height_pacing.start_delay``: when the consensus driver starts its next height."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from yilian.node.height_pacing import Pacing, start_delay

times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
periods = st.floats(min_value=0.001, max_value=60, allow_nan=False)


def test_idle_without_heartbeat_waits_for_transactions() -> None:
    p = Pacing(block_interval_s=0.5, heartbeat_s=0.0)
    assert start_delay(p, now=100.0, height_started_at=0.0, last_commit_at=0.0,
                       txs_ready=False, peer_started=False) is None


def test_ready_transactions_wait_out_the_interval_from_the_last_height_start() -> None:
    p = Pacing(block_interval_s=0.5, heartbeat_s=0.0)
    delay = start_delay(p, now=10.2, height_started_at=10.0, last_commit_at=10.15,
                        txs_ready=True, peer_started=False)
    assert delay is not None and abs(delay - 0.3) < 1e-9
    # a height that took longer than the interval is followed at once
    assert start_delay(p, now=11.0, height_started_at=10.0, last_commit_at=10.9,
                       txs_ready=True, peer_started=False) == 0.0
    # the first height after a (re)start does not wait
    assert start_delay(p, now=5.0, height_started_at=float("-inf"), last_commit_at=5.0,
                       txs_ready=True, peer_started=False) == 0.0


@given(p_i=periods, p_h=st.one_of(st.just(0.0), periods), now=times, since_start=times,
       since_commit=times, ready=st.booleans(), peer=st.booleans())
def test_start_delay_properties(p_i: float, p_h: float, now: float, since_start: float,
                               since_commit: float, ready: bool, peer: bool) -> None:
    """Monotonic clock: the height started and the last commit happened at or before now."""
    p = Pacing(block_interval_s=p_i, heartbeat_s=p_h)
    started, committed = now - since_start, now - since_commit
    d = start_delay(p, now=now, height_started_at=started, last_commit_at=committed,
                    txs_ready=ready, peer_started=peer)
    if peer:
        assert d == 0.0  # a peer is in the height: join at once
    elif ready:
        assert d is not None and 0.0 <= d <= p_i
        assert d == 0.0 or now + d >= started + p_i - 1e-6  # never before the interval
    elif p_h:
        assert d is not None and 0.0 <= d <= p_h
    else:
        assert d is None


def test_heartbeat_counts_from_the_last_commit() -> None:
    p = Pacing(block_interval_s=0.5, heartbeat_s=2.0)
    delay = start_delay(p, now=11.0, height_started_at=5.0, last_commit_at=10.0,
                        txs_ready=False, peer_started=False)
    assert delay is not None and abs(delay - 1.0) < 1e-9
