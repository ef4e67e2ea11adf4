"""The soak benchmark's figures and its report: per-interval throughput, latency and CPU,
the nodes' memory samples and ``/metrics`` gauges, and the trends over the second half
(see :mod:`yilian.bench.soak`)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from yilian.bench.command import log
from yilian.bench.leveldb_log import LogReader
from yilian.bench.measure import percentile, proc_cpu


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """Resident memory of ``pid`` in MB (``field`` of /proc/<pid>/status: VmRSS, or its
    RssAnon part, the heap, or RssFile, mapped files), None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, in value per minute (nan if < 2)."""
    if len(points) < 2:
        return math.nan
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return math.nan
    return 60 * sum((t - mx) * (v - my) for t, v in points) / var


# -- measurement -------------------------------------------------------------------------


@dataclass
class Interval:
    """What happened between two reports (``end`` seconds since the first send)."""

    end: float
    drain: bool = False  # after the last send: only waiting for the last receipts
    sent: int = 0
    committed: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    rss: list[float | None] = field(default_factory=list)  # MB per node at the end
    cpu: list[float | None] = field(default_factory=list)  # CPU s per node in the interval
    blocks: int = 0  # blocks the first node committed in the interval
    late_blocks: int = 0  # of those, decided in a round after 0 (a round timed out)
    # LevelDB background work that ended in the interval, per node: seconds compacting,
    # number of compactions, MB they wrote (from each node's LevelDB LOG)
    compaction_s: list[float] = field(default_factory=list)
    compactions: list[int] = field(default_factory=list)
    compacted_mb: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return percentile(sorted(self.latencies), 50)

    @property
    def p99(self) -> float:
        return percentile(sorted(self.latencies), 99)

    @property
    def cpu_total(self) -> float | None:
        return None if any(c is None for c in self.cpu) else sum(c or 0 for c in self.cpu)

    @property
    def cpu_ms_per_tx(self) -> float:
        total = self.cpu_total
        return math.nan if total is None or not self.committed else 1000 * total / self.committed


@dataclass
class Soak:
    """The running measurement: pending transactions and the intervals so far."""

    pids: list[int]
    t0: float = field(default_factory=time.monotonic)
    pending: list[dict[str, float]] = field(default_factory=list)  # per node: hash -> sent
    current: Interval = field(default_factory=lambda: Interval(end=0.0))
    intervals: list[Interval] = field(default_factory=list)
    rss_samples: list[tuple[float, list[float | None]]] = field(default_factory=list)
    anon_samples: list[tuple[float, list[float | None]]] = field(default_factory=list)
    # the nodes' /metrics memory gauges (yilian.node.diagnostics.memory_figures), per sample
    gauges: list[tuple[float, list[dict[str, float]]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    last_cpu: list[float | None] = field(default_factory=list)
    transport_retries: int = 0
    retries: dict[str, int] = field(default_factory=dict)  # refusals retried, by reason
    logs: list[list[LogReader]] = field(default_factory=list)  # per node: its LevelDB LOGs

    def now(self) -> float:
        return time.monotonic() - self.t0

    def outstanding(self) -> int:
        return sum(len(p) for p in self.pending)

    def fail(self, what: str) -> None:
        self.current.failed += 1
        if len(self.failures) < 20:
            self.failures.append(what)
            log(f"FAILED: {what}")

    def sample(self) -> list[float | None]:
        rss = [rss_mb(pid) for pid in self.pids]
        self.rss_samples.append((self.now(), rss))
        self.anon_samples.append((self.now(), [rss_mb(pid, "RssAnon") for pid in self.pids]))
        return rss

    def close_interval(self) -> Interval:
        done = self.current
        done.end = self.now()
        done.rss = self.sample()
        cpu_now = [proc_cpu(pid) for pid in self.pids]
        done.cpu = [None if a is None or b is None else a - b
                    for a, b in zip(cpu_now, self.last_cpu, strict=True)]
        self.last_cpu = cpu_now
        for readers in self.logs:
            events = [e for r in readers for e in r.read() if e.kind == "compaction"]
            done.compaction_s.append(sum(e.seconds for e in events))
            done.compactions.append(len(events))
            done.compacted_mb.append(sum(e.written for e in events) / 2**20)
        self.intervals.append(done)
        self.current = Interval(end=0.0)
        return done


def format_interval(i: Interval, index: int) -> str:
    rss = " ".join("   -  " if r is None else f"{r:6.1f}" for r in i.rss)
    total = sum(r for r in i.rss if r is not None)
    return (f"{index:3d} {i.end / 60:6.2f} {i.sent:6d} {i.committed:6d} {i.failed:4d} "
            f"{i.p50:6.3f} {i.p99:6.3f} {(i.cpu_total or math.nan):7.1f} "
            f"{i.cpu_ms_per_tx:7.2f} {i.blocks:4d} {i.late_blocks:3d} "
            f"{sum(i.compaction_s):6.2f}  {total:7.1f} | {rss}"
            f"{'  (drain)' if i.drain else ''}")


def header(nodes: int) -> str:
    names = " ".join(f"{'n' + str(k + 1):>6}" for k in range(nodes))
    return ("  #    min   sent commit fail  p50 s  p99 s   cpu s  ms/tx  blk r>0 cmp s  "
            f"rss MB | {names}")


# -- report ------------------------------------------------------------------------------


def summary(soak: Soak, nodes: int) -> str:
    ivs = [i for i in soak.intervals if i.committed and not i.drain]
    lines = ["", header(nodes)]
    lines += [format_interval(i, k + 1) for k, i in enumerate(soak.intervals)]
    sent = sum(i.sent for i in soak.intervals)
    committed = sum(i.committed for i in soak.intervals)
    failed = sum(i.failed for i in soak.intervals)
    cpu = [i.cpu_total for i in soak.intervals]
    cpu_total = None if any(c is None for c in cpu) else sum(c or 0 for c in cpu)
    lines.append(f"sent {sent}, committed {committed}, failed {failed}; node CPU "
                 f"{'-' if cpu_total is None else f'{cpu_total:.1f} s'}"
                 + (f" = {1000 * cpu_total / committed:.2f} ms per committed tx"
                    if cpu_total is not None and committed else ""))
    lines += _memory_lines(soak.rss_samples, nodes, "RSS")
    # RssAnon: the heap alone, without mapped files (libraries, LevelDB's mmapped tables,
    # which grow with the database and are page cache the kernel can reclaim).
    lines += _memory_lines(soak.anon_samples, nodes, "anonymous RSS (heap)")
    lines += _gauge_lines(soak.gauges)
    if ivs:
        a, b = ivs[0], ivs[-1]
        lines.append(f"latency first interval p50 {a.p50:.3f} s p99 {a.p99:.3f} s; last full "
                     f"interval p50 {b.p50:.3f} s p99 {b.p99:.3f} s; p99 last/first "
                     f"{b.p99 / a.p99 if a.p99 else math.nan:.2f}")
        lines.append(f"CPU per tx first interval {a.cpu_ms_per_tx:.2f} ms, last "
                     f"{b.cpu_ms_per_tx:.2f} ms")
        lines += _trend_lines(ivs)
        lines += _tail_lines(ivs)
    if soak.retries:
        lines.append("sends retried after a refusal that clears by itself: " + ", ".join(
            f"{reason} {n}" for reason, n in sorted(soak.retries.items())))
    if soak.transport_retries:
        lines.append(f"sends retried after a transport error: {soak.transport_retries}")
    if soak.failures:
        lines.append("failures (first ones): " + "; ".join(soak.failures[:5]))
    return "\n".join(lines)


def _trend_lines(ivs: Sequence[Interval]) -> list[str]:
    """Latency and CPU per transaction over the second half of the full intervals: mean,
    least-squares slope, and the drift that slope makes over the half, relative to the mean
    (the first minutes warm up: the database grows from empty into its first compactions)."""
    half = [i for i in ivs if i.end > ivs[-1].end / 2]  # intervals that end in it
    lines = []
    for name, unit, get in (("latency p50", "s", lambda i: i.p50),
                            ("latency p99", "s", lambda i: i.p99),
                            ("CPU per tx", "ms", lambda i: i.cpu_ms_per_tx)):
        points = [(i.end, v) for i in half if not math.isnan(v := get(i))]
        if len(points) < 2:
            continue
        mean = sum(v for _, v in points) / len(points)
        slope = slope_per_minute(points)
        span = (points[-1][0] - points[0][0]) / 60
        lines.append(f"second half ({len(points)} intervals): {name} mean {mean:.3f} {unit}, "
                     f"slope {slope:+.4f} {unit}/min, drift over the half "
                     f"{100 * slope * span / mean if mean else math.nan:+.1f}% of the mean")
    return lines


def _tail_lines(ivs: Sequence[Interval]) -> list[str]:
    """What the slow intervals have in common: LevelDB compaction per node over the run, and
    the mean p99 of intervals with and without a block decided after round 0 and with more
    or less compaction than the median interval."""
    lines = []
    if any(i.compactions for i in ivs):
        nodes = max(len(i.compactions) for i in ivs)
        lines.append("LevelDB compactions over the run: " + ", ".join(
            f"node {k + 1} {sum(i.compactions[k] for i in ivs if k < len(i.compactions))} "
            f"taking {sum(i.compaction_s[k] for i in ivs if k < len(i.compaction_s)):.1f} s, "
            f"{sum(i.compacted_mb[k] for i in ivs if k < len(i.compacted_mb)):.0f} MB written"
            for k in range(nodes)))
    late = sum(i.late_blocks for i in ivs)
    lines.append(f"blocks {sum(i.blocks for i in ivs)}, decided after round 0: {late}")

    def mean_p99(group: Sequence[Interval]) -> str:
        return f"{sum(i.p99 for i in group) / len(group):.3f} s" if group else "-"

    with_late = [i for i in ivs if i.late_blocks]
    lines.append(f"mean p99 of intervals with a block decided after round 0 "
                 f"({len(with_late)}): {mean_p99(with_late)}; without "
                 f"({len(ivs) - len(with_late)}): "
                 f"{mean_p99([i for i in ivs if not i.late_blocks])}")
    if any(i.compaction_s for i in ivs):
        median = sorted(sum(i.compaction_s) for i in ivs)[len(ivs) // 2]
        busy = [i for i in ivs if sum(i.compaction_s) > median]
        lines.append(f"mean p99 of intervals with more compaction than the median "
                     f"({median:.2f} s, all nodes; {len(busy)}): {mean_p99(busy)}; the rest "
                     f"({len(ivs) - len(busy)}): "
                     f"{mean_p99([i for i in ivs if sum(i.compaction_s) <= median])}")
    return lines


GAUGES = (("yilian_leveldb_memory_bytes", "LevelDB memtables + block cache"),
          ("yilian_malloc_in_use_bytes", "malloc in use"),
          ("yilian_malloc_free_bytes", "malloc free in arenas"),
          ("outside_malloc", "anonymous memory outside malloc (pymalloc arenas, stacks)"),
          ("yilian_python_allocated_blocks", "Python allocated blocks"))
MALLOC_PARTS = ("yilian_malloc_in_use_bytes", "yilian_malloc_free_bytes")


def _derived(row: dict[str, float]) -> dict[str, float]:
    """A node's gauges plus ``outside_malloc``: resident anonymous memory that glibc's
    malloc does not account for (Python's pymalloc arenas are mmapped directly)."""
    if "yilian_resident_anon_bytes" in row and all(k in row for k in MALLOC_PARTS):
        return {**row, "outside_malloc": row["yilian_resident_anon_bytes"]
                - sum(row[k] for k in MALLOC_PARTS)}
    return row


def _gauge_lines(gauges: Sequence[tuple[float, list[dict[str, float]]]]) -> list[str]:
    """Where the heap is, per node: first and last sample and the slope over the second
    half (MB, or thousands of blocks)."""
    if not gauges:
        return []
    end = gauges[-1][0]
    gauges = [(t, [_derived(r) for r in row]) for t, row in gauges]
    nodes = max(len(row) for _, row in gauges)
    lines = []
    for name, what in GAUGES:
        scale = 1e3 if name.endswith("blocks") else 2**20
        unit = "k" if name.endswith("blocks") else "MB"
        parts: list[str] = []
        for k in range(nodes):
            points = [(t, row[k][name] / scale) for t, row in gauges
                      if k < len(row) and name in row[k]]
            if not points:
                continue
            half = [(t, v) for t, v in points if t >= end / 2]
            parts.append(f"node {k + 1} {points[0][1]:.1f} -> {points[-1][1]:.1f} "
                         f"({slope_per_minute(half):+.2f}/min)")
        if parts:
            lines.append(f"{what} ({unit}; slope over the second half): " + ", ".join(parts))
    return lines


def table_files(homes: Sequence[str]) -> str:
    """Each node's LevelDB table files (count, MB): the mapped part of its resident memory
    grows with these, up to ``storage.MAX_OPEN_FILES`` open tables."""
    parts = []
    for k, home in enumerate(homes):
        files = list(Path(home).rglob("*.ldb"))
        size = sum(f.stat().st_size for f in files if f.exists()) / 2**20
        parts.append(f"node {k + 1} {len(files)} files {size:.0f} MB")
    return "LevelDB tables at the end: " + ", ".join(parts)


def _memory_lines(samples: Sequence[tuple[float, list[float | None]]], nodes: int,
                  what: str) -> list[str]:
    """Per node: first and last sample, least-squares slope over the second half."""
    end = samples[-1][0] if samples else 0.0
    half = [(t, r) for t, r in samples if t >= end / 2]
    lines = []
    for k in range(nodes):
        points = [(t, v) for t, r in half if (v := r[k]) is not None]
        first = next((r[k] for _, r in samples if r[k] is not None), None)
        last = points[-1][1] if points else None
        lines.append(f"node {k + 1}: {what} {first or math.nan:.1f} -> {last or math.nan:.1f} "
                     f"MB, slope over the second half {slope_per_minute(points):+.2f} MB/min")
    totals = [(t, sum(v for v in r if v is not None)) for t, r in half
              if all(v is not None for v in r)]
    lines.append(f"all nodes: {what} slope over the second half "
                 f"{slope_per_minute(totals):+.2f} MB/min ({len(totals)} samples from "
                 f"{end / 120:.1f} to {end / 60:.1f} min)")
    return lines
