"""LevelDB's background compaction runs at a lower CPU priority than the node's own work.

LevelDB compacts in one native thread of its own. A node's database only grows (state trie
nodes are never pruned), so compaction grows with it: in the soak benchmark (``python -m
yilian.bench.soak --minutes 60 --rate 40 --nodes 4``, 4 nodes on 2 CPUs) each node's
compactions took 4.4 s per minute for all nodes together in minutes 1-15 and 30.7 s in
minutes 46-60, and the minutes with more compaction than the median had a mean
send-to-receipt p99 of 2.62 s against 1.37 s for the rest, with no round ever timing out:
the compaction thread took the CPU from the threads building and checking blocks (a node
keeps all its threads on one CPU, ``yilian.cli.runner``).

:class:`NativeThreads` lowers the priority (raises the nice value, Linux's per-thread
``setpriority``) of every thread of this process that Python did not start, which in a
node is LevelDB's compaction thread (the HTTP server, consensus, p2p and the producer are
Python threads) and uvloop's libuv workers, which do only DNS and file work and sit idle.
Compaction then fills the CPU time the node leaves idle and yields when blocks are built or
checked. It is not starved: CFS still gives a nice-10 thread about a
tenth of a busy CPU, and when LevelDB holds back writes until a compaction is done the node
waits and the compaction has the CPU to itself.

Measured with the smaller transaction index (:mod:`yilian.node.tx_index`) in the same
benchmark: the second half's p99 was 1.18 s and drifted +3.0% of its mean (before both
changes: 2.53 s, +49%), and the minutes with more compaction than the median no longer had a
higher p99 (docs/chain-core.md, "Disk growth and compaction").

LevelDB starts its thread at the first flush, so :meth:`NativeThreads.check` runs after
commits (the store calls it every ``EVERY`` commits; a scan of ``/proc/self/task`` costs
tens of microseconds). ``YILIAN_COMPACTION_NICE`` sets the nice value (0 leaves the threads
alone); off Linux nothing happens.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

ENV_VAR = "YILIAN_COMPACTION_NICE"
DEFAULT_NICE = 10
EVERY = 64  # commits between two checks

log = logging.getLogger("yilian.storage")


def nice_from_env() -> int:
    """``YILIAN_COMPACTION_NICE`` as a nice value 0..19 (default 10); raises ValueError."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return DEFAULT_NICE
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a whole number 0..19, got {text!r}") from None
    if not 0 <= value <= 19:
        raise ValueError(f"{ENV_VAR} must be 0..19 (0: leave LevelDB's threads alone), "
                         f"got {value}")
    return value


class NativeThreads:
    """Lowers the priority of this process's threads that Python did not start."""

    def __init__(self, nice: int) -> None:
        self.nice = nice
        self.lowered: set[int] = set()  # thread ids done
        self._tasks = Path(f"/proc/{os.getpid()}/task")
        self._enabled = nice > 0 and hasattr(os, "setpriority") and self._tasks.is_dir()

    def check(self) -> list[int]:
        """Lower every native thread not lowered yet; returns the thread ids lowered now."""
        if not self._enabled:
            return []
        try:
            tids = {int(p.name) for p in self._tasks.iterdir()}
        except (OSError, ValueError):
            return []
        running = threading.enumerate()
        if any(t.native_id is None for t in running):
            return []  # a Python thread is starting: its id is not known yet, look later
        python = {t.native_id for t in running}
        done = []
        for tid in sorted(tids - python - self.lowered):
            try:
                if os.getpriority(os.PRIO_PROCESS, tid) < self.nice:
                    os.setpriority(os.PRIO_PROCESS, tid, self.nice)
            except OSError:  # gone, or not allowed: leave it
                continue
            self.lowered.add(tid)
            done.append(tid)
        self.lowered &= tids  # forget threads that ended
        if done:
            log.info("native threads %s (LevelDB's compaction) run at nice %d", done, self.nice)
        return done
