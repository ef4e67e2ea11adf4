"""How many transactions fit a block's time budget, finalisation included.

A proposer has ``budget_s`` to build its block. Executing the transactions is only part of
it: finalising the block (receipt and transaction tries, post-processing, the state root,
persisting) took about 1.5 times the transaction loop in the consensus benchmark, and it
grows with the number of transactions. A loop that stops only when its own time runs out
therefore overshoots the budget by that much, and the other validators' propose timeout
can pass before the proposal arrives (a second round).

:class:`FinalisationEstimate` keeps a moving average of finalisation seconds per included
transaction, learnt from the blocks this node builds, and :func:`room_for_one_more` stops
the loop while the time left still covers finalising what it has taken.

Invariants (``tests/test_build_budget.py``):

* the first transaction is always tried (a block's only transaction is bounded by the
  execution deadline itself, as before);
* one slow block moves the estimate by at most a fifth of the way, and a sample is clamped
  at ``MAX_SAMPLE_S`` per transaction, so an outlier (a compaction stall) cannot starve
  the following blocks;
* pure: times are given, no clock is read here.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHA = 0.2  # weight of the newest block in the moving average
MAX_SAMPLE_S = 0.005  # per transaction: 5 ms is ~10x what finalisation costs here
INITIAL_S = 0.0005  # before the first block: 0.5 ms per transaction


@dataclass
class FinalisationEstimate:
    per_tx_s: float = INITIAL_S

    def learn(self, seconds: float, txs: int) -> None:
        """Take one block's finalisation time (``seconds`` for ``txs`` transactions)."""
        if txs <= 0 or seconds < 0:
            return
        sample = min(seconds / txs, MAX_SAMPLE_S)
        self.per_tx_s += ALPHA * (sample - self.per_tx_s)


def room_for_one_more(now: float, deadline: float | None, included: int,
                      estimate: FinalisationEstimate) -> bool:
    """Whether the loop may try another transaction at ``now``: there is no deadline, or
    nothing is included yet, or finalising ``included + 1`` transactions still ends by
    ``deadline``."""
    if deadline is None or included == 0:
        return deadline is None or now <= deadline
    return now + estimate.per_tx_s * (included + 1) <= deadline
