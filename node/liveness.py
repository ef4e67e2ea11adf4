"""Is the chain making progress? What ``/healthz``, ``/readyz`` and the waiting calls ask.

The chain is **stalled** when either

* ``no_quorum``: the validators this node is connected to (itself included) hold at most
  2/3 of the voting power, so no block can be final until more come back; or
* ``no_commit``: executable transactions have been waiting for more than
  ``STALL_AFTER_S`` seconds without any block being committed (a quorum is connected but
  not deciding: a stuck or partitioned validator, a block that cannot be built).

A chain that is idle (no executable transaction) is never stalled, however old its head:
blocks are made only when there is something to include. Transactions that cannot execute
yet (a nonce gap) do not count, so nobody can make a node look stalled by sending one.

Known limit: the ``no_commit`` clock starts when this node first *observes* executable
transactions waiting (at a commit, a status query or a domain call), so it may report a
stall later than it began, never earlier.
"""

from __future__ import annotations

import threading
import time

from yilian.node.interfaces import ChainHealth, ConsensusView, LedgerAPI, Problem

# A healthy height decides in round 0 (~1 s); three failed rounds with the default
# timeouts (propose 2 s + 0.5 s per round, prevote/precommit 0.5 s + 0.25 s per round)
# take ~13.5 s. 20 s without a commit while transactions wait means something is wrong.
STALL_AFTER_S = 20.0


class Liveness:
    """Tracks commits and waiting transactions of one node; ``check()`` judges them."""

    def __init__(self, ledger: LedgerAPI, consensus: ConsensusView | None,
                 stall_after_s: float = STALL_AFTER_S) -> None:
        self.ledger = ledger
        self.consensus = consensus
        self.stall_after_s = stall_after_s
        self._lock = threading.Lock()
        self._last_commit: float | None = None
        self._ready_since: float | None = None

    def committed(self) -> None:
        """A block was committed (a ledger subscriber: called on every commit)."""
        with self._lock:
            self._last_commit = time.monotonic()
            self._ready_since = None

    def _power(self) -> tuple[int, int, int]:
        """(connected voting power incl. this node, total voting power, peers)."""
        validators = self.ledger.genesis.validators
        driver = self.consensus
        if driver is None:  # a single validator: it is the quorum
            return 1, 1, 0
        total = sum(v.power for v in validators)
        pm = driver.pm
        connected = set(pm.connected_peers()) if pm is not None else set()
        own = driver.public_key if driver.address is not None else None
        power = sum(v.power for v in validators
                    if v.node_key in connected or v.node_key == own)
        return power, total, len(connected)

    def check(self) -> ChainHealth:
        power, total, peers = self._power()
        quorum = 3 * power > 2 * total
        now = time.monotonic()
        ready = self.ledger.mempool.has_ready.is_set()
        with self._lock:
            if not ready:
                self._ready_since = None
            elif self._ready_since is None:
                self._ready_since = now
            waiting_s = 0.0 if self._ready_since is None else now - self._ready_since
            last = self._last_commit
        problems: list[Problem] = []
        if not quorum:
            problems.append(Problem(
                "no_quorum", f"connected validators hold {power} of {total} voting power; "
                "more than 2/3 must be connected for a block to be final: bring the stopped "
                "validators back"))
        if waiting_s > self.stall_after_s:
            problems.append(Problem(
                "no_commit", f"transactions have waited {waiting_s:.0f} s without a block "
                "being committed; check the validators' logs and connectivity"))
        return ChainHealth(quorum, power, total, peers, self.ledger.core.head().block_number,
                           None if last is None else now - last, tuple(problems))
