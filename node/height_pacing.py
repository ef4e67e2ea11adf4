"""When the consensus driver starts its next height: a pure function of the clock it is given.

A height starts once there is something to decide:

* a peer is already in it: at once (its proposer's clock already paced it);
* transactions are ready: ``blockIntervalMs`` after the previous height started, so a
  steady load is batched into one block per interval (like Tendermint's ``timeout_commit``)
  instead of one small block per poll, whose votes, signatures and commit batch would then
  dominate the work per transaction; a height that took longer than the interval is
  followed at once;
* otherwise the heartbeat, ``heartbeatMs`` after the last commit (0: no empty blocks).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pacing:
    block_interval_s: float
    heartbeat_s: float  # 0.0: no heartbeat


def start_delay(pacing: Pacing, *, now: float, height_started_at: float, last_commit_at: float,
                txs_ready: bool, peer_started: bool) -> float | None:
    """Seconds until the pending height may start (0.0: now), or None while nothing asks
    for it. Times are one monotonic clock; ``height_started_at`` may be ``-inf``."""
    if peer_started:
        return 0.0
    if txs_ready:
        return max(0.0, pacing.block_interval_s - (now - height_started_at))
    if pacing.heartbeat_s:
        return max(0.0, pacing.heartbeat_s - (now - last_commit_at))
    return None
