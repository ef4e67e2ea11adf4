"""Memory diagnostics: periodic tracemalloc snapshots of a running node, and their comparison.

A node started with ``YILIAN_TRACEMALLOC=<dir>,<seconds>[,<frames>[,<node name>]]`` in its
environment starts :mod:`tracemalloc` (keeping ``frames`` frames per allocation, 1 by
default) and writes a snapshot every ``seconds`` into ``<dir>`` as
``<node name>-<pid>-<seq>.tracemalloc`` (``seq`` zero-padded, so names sort by time). With a
node name only that node traces (the others of a local network share the environment).
Tracing slows every allocation several times and adds memory per traced block: use it to
find growth, not to measure speed (a slowed validator can make BFT rounds time out). With
``frames`` 0 nothing is traced: each snapshot is only a census of live objects per type
(``<...>.census.json``, one pass over the garbage collector's objects), cheap enough for a
node under load; a census is written next to every tracemalloc snapshot too.

:func:`compare_snapshots` (``python -m yilian.bench.soak --compare <dir>``) prints, per
node, the allocation sites whose live memory grew the most between its first and its last
snapshot (the first one is taken after a warm-up, so start-up allocations do not count),
and the object types whose live count grew the most.

:func:`memory_figures` are cheap gauges of where a process's memory is (``/metrics`` serves
them): resident anonymous memory and mapped files, glibc malloc's bytes in use and free
inside its arenas (free bytes growing while in-use bytes do not: fragmentation), and
Python's allocated blocks (objects and their buffers from pymalloc).
"""

from __future__ import annotations

import ctypes
import functools
import gc
import json
import logging
import os
import sys
import threading
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

ENV_VAR = "YILIAN_TRACEMALLOC"
SUFFIX = ".tracemalloc"
CENSUS_SUFFIX = ".census.json"

log = logging.getLogger(__name__)


class DiagnosticsError(ValueError):
    """A malformed ``YILIAN_TRACEMALLOC`` value; the message says the expected form."""


@dataclass(frozen=True)
class SnapshotPlan:
    directory: Path
    every: float  # seconds between snapshots
    frames: int = 1
    only: str | None = None  # trace only the node of this name


def parse_plan(value: str) -> SnapshotPlan:
    """``<dir>,<seconds>[,<frames>[,<node>]]`` as a plan; raises DiagnosticsError naming the
    bad part."""
    parts = value.split(",")
    if len(parts) not in (2, 3, 4) or not parts[0]:
        raise DiagnosticsError(f"{ENV_VAR}={value!r}: expected <dir>,<seconds>[,<frames>"
                               f"[,<node name>]], e.g. /tmp/snaps,60")
    try:
        every = float(parts[1])
        frames = int(parts[2]) if len(parts) >= 3 and parts[2] else 1
    except ValueError as exc:
        raise DiagnosticsError(f"{ENV_VAR}={value!r}: seconds must be a number and frames "
                               f"an integer") from exc
    if not every > 0 or not 0 <= frames <= 100:
        raise DiagnosticsError(f"{ENV_VAR}={value!r}: seconds must be > 0 and frames 0..100")
    return SnapshotPlan(Path(parts[0]), every, frames, parts[3] or None if len(parts) == 4
                        else None)


class SnapshotWriter:
    """Writes a tracemalloc snapshot every ``plan.every`` seconds from a daemon thread."""

    def __init__(self, plan: SnapshotPlan, name: str) -> None:
        self.plan = plan
        self.prefix = f"{name}-{os.getpid()}-"
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracemalloc-snapshots",
                                        daemon=True)

    def start(self) -> None:
        self.plan.directory.mkdir(parents=True, exist_ok=True)
        if self.plan.frames and not tracemalloc.is_tracing():
            tracemalloc.start(self.plan.frames)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def write_one(self) -> Path:
        base = self.plan.directory / f"{self.prefix}{self.count:05d}"
        self.count += 1
        census = base.with_name(base.name + CENSUS_SUFFIX)
        census.write_text(json.dumps(object_census(), sort_keys=True))
        if not tracemalloc.is_tracing():
            return census
        path = base.with_name(base.name + SUFFIX)
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        snapshot.dump(str(path))
        return path

    def _run(self) -> None:
        while not self._stop.wait(self.plan.every):
            try:
                self.write_one()
            except OSError as exc:  # a full disk must not take the node down
                log.warning("tracemalloc snapshot not written: %s", exc)


def start_from_env(name: str) -> SnapshotWriter | None:
    """Start periodic snapshots if ``YILIAN_TRACEMALLOC`` is set (see the module docstring)."""
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    plan = parse_plan(value)
    if plan.only is not None and plan.only != name:
        return None
    writer = SnapshotWriter(plan, name)
    writer.start()
    log.warning("tracemalloc on: a snapshot every %.0f s into %s (slows the node)",
                writer.plan.every, writer.plan.directory)
    return writer


def object_census() -> dict[str, int]:
    """Live objects tracked by the garbage collector, counted per type (module.name)."""
    counts: dict[str, int] = defaultdict(int)
    for obj in gc.get_objects():
        kind = type(obj)
        counts[f"{kind.__module__}.{kind.__qualname__}"] += 1
    return dict(counts)


def snapshot_series(directory: Path, suffix: str = SUFFIX) -> dict[str, list[Path]]:
    """The snapshot files in ``directory``, per ``<name>-<pid>`` in time order."""
    series: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(directory.glob(f"*{suffix}")):
        series[path.name[: -len(suffix)].rsplit("-", 1)[0]].append(path)
    return dict(series)


def census_growth(first: Path, last: Path, *, top: int = 15) -> list[str]:
    """Lines naming the ``top`` object types whose live count grew most."""
    old, new = json.loads(first.read_text()), json.loads(last.read_text())
    growth = sorted(((n - old.get(k, 0), n, k) for k, n in new.items()), reverse=True)
    lines = [f"objects {sum(old.values())} -> {sum(new.values())}"]
    lines += [f"{diff:+10d} objects (now {n:9d})  {k}" for diff, n, k in growth[:top] if diff > 0]
    return lines


def _own_frame(trace: tracemalloc.Trace) -> str:
    """The innermost frame of ``trace`` in this project's code (not a library's), or the
    outermost frame kept when none is."""
    for frame in trace.traceback:  # most recent call first
        if _OWN in frame.filename and "site-packages" not in frame.filename:
            return f"{frame.filename}:{frame.lineno}"
    frame = trace.traceback[-1]
    return f"(library) {frame.filename}:{frame.lineno}"


_OWN = str(Path(__file__).resolve().parent.parent)


def _by_own_frame(snapshot: tracemalloc.Snapshot) -> dict[str, tuple[int, int]]:
    sites: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for trace in snapshot.traces:
        site = sites[_own_frame(trace)]
        site[0] += trace.size
        site[1] += 1
    return {k: (v[0], v[1]) for k, v in sites.items()}


def top_growth(first: Path, last: Path, *, top: int = 15, key: str = "lineno") -> list[str]:
    """Lines naming the ``top`` allocation sites that grew most from ``first`` to ``last``.

    ``key`` is a tracemalloc grouping (``lineno``, ``filename``, ``traceback``) or ``own``:
    by the innermost frame in this project's code (which structure holds it; needs
    snapshots taken with enough frames to reach that code, e.g. 25).
    """
    old = tracemalloc.Snapshot.load(str(first))
    new = tracemalloc.Snapshot.load(str(last))
    lines = [f"traced {sum(t.size for t in old.traces) / 2**20:.1f} -> "
             f"{sum(t.size for t in new.traces) / 2**20:.1f} MiB"]
    if key == "own":
        before, after = _by_own_frame(old), _by_own_frame(new)
        growth = sorted(((size - before.get(site, (0, 0))[0],
                          count - before.get(site, (0, 0))[1], size, site)
                         for site, (size, count) in after.items()), reverse=True)
        for size_diff, count_diff, size, site in growth[:top]:
            if size_diff <= 0:
                break
            lines.append(f"{size_diff / 1024:+10.1f} KiB {count_diff:+8d} blocks "
                         f"(now {size / 1024:9.1f} KiB)  {site}")
        return lines
    for stat in new.compare_to(old, key)[:top]:
        if stat.size_diff <= 0:
            break
        frame = stat.traceback[0]
        lines.append(f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks "
                     f"(now {stat.size / 1024:9.1f} KiB)  {frame.filename}:{frame.lineno}")
        if key == "traceback":
            lines += [f"{'':44}{f.filename}:{f.lineno}" for f in list(stat.traceback)[1:]]
    return lines


def compare_snapshots(directory: Path, *, top: int = 15, key: str = "own") -> str:
    """A report of the top growing sites per node between its first and last snapshot."""
    out = []
    for who, paths in sorted(snapshot_series(directory).items()):
        if len(paths) < 2:
            out.append(f"{who}: {len(paths)} snapshot(s), need two to compare")
            continue
        out.append(f"{who}: growth from {paths[0].name} to {paths[-1].name}")
        out += ["  " + line for line in top_growth(paths[0], paths[-1], top=top, key=key)]
    for who, paths in sorted(snapshot_series(directory, CENSUS_SUFFIX).items()):
        if len(paths) >= 2:
            out.append(f"{who}: object types from {paths[0].name} to {paths[-1].name}")
            out += ["  " + line for line in census_growth(paths[0], paths[-1], top=top)]
    return "\n".join(out) if out else f"no {SUFFIX} or {CENSUS_SUFFIX} files in {directory}"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


@functools.cache
def _mallinfo2_function() -> Any | None:
    """glibc's ``mallinfo2`` (2.33+) from the symbols already loaded into the process
    (``dlopen(NULL)``: no library search, which would start ``ldconfig``), or None."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []
    return fn


def _mallinfo2() -> _MallInfo2 | None:
    """glibc's ``mallinfo2()``, or None on another C library."""
    fn = _mallinfo2_function()
    return None if fn is None else cast(_MallInfo2, fn())


def memory_figures() -> dict[str, int]:
    """Where this process's memory is, in bytes (blocks for ``python_allocated_blocks``):
    ``resident_anon``/``resident_file`` from ``/proc/self/status`` (RssAnon, RssFile),
    ``malloc_in_use``/``malloc_free`` (glibc arenas plus mmapped chunks in use; free
    bytes held in the arenas), ``python_allocated_blocks``. Missing sources are left out."""
    out: dict[str, int] = {"python_allocated_blocks": sys.getallocatedblocks()}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                out["resident_" + key[3:].lower()] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    info = _mallinfo2()
    if info is not None:
        out["malloc_in_use"] = int(info.uordblks) + int(info.hblkhd)
        out["malloc_free"] = int(info.fordblks)
    return out
