"""How many malloc arenas a node process may use (glibc only).

glibc gives a multithreaded process up to eight malloc arenas per CPU: each thread that
meets a locked arena moves to another one, and memory freed in one arena is reused only
by the threads that allocate from it. A node runs a dozen threads (HTTP workers, the
consensus driver, p2p, the block producer, LevelDB's compaction), so its freed memory
scatters over many arenas. In the soak benchmark (``python -m yilian.bench.soak
--minutes 60 --rate 40 --nodes 4 --node-env center-1:MALLOC_ARENA_MAX=2 --node-env
center-3:MALLOC_ARENA_MAX=2``, two nodes with two arenas, two with the default) the free
bytes held in the arenas ended at 7.0 and 6.3 MB with two arenas against 11.9 and 10.9
MB with the default, and the heap's slope over the second half was +0.12 and +0.08 MB/min
against +0.21 and +0.11. That run reports CPU for all nodes together; CPU per transaction
with the limit (this commit's tree) and without (the tree before it), measured in turns in
one session, stayed within the runs' noise: 29.3-29.8 and 29.7-30.8 ms per transaction in a
2-minute soak of 4 nodes, 2.90-2.96 and 2.75-3.57 ms at a single node's saturation (the
node's threads share one GIL, so they seldom contend for an arena).

:func:`limit_arenas` sets the limit with ``mallopt(M_ARENA_MAX)`` before the node starts
its threads. A ``MALLOC_ARENA_MAX`` in the environment wins (glibc has applied it already)
and is left alone; on another C library nothing happens.
"""

from __future__ import annotations

import ctypes
import os

ARENAS = 2
ENV_VAR = "MALLOC_ARENA_MAX"
_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Limit glibc malloc to ``arenas`` arenas; True when this call set the limit."""
    if arenas < 1:
        raise ValueError(f"arenas must be at least 1, got {arenas}")
    if os.environ.get(ENV_VAR):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the symbols already loaded: no library search
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
