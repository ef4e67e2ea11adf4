"""What a load phase measures: latency percentiles, CPU time per process, counts of errors,
the blocks seen and the phase's result.

Percentiles interpolate linearly; statistics of an empty set are NaN (``no_nan`` makes
them ``null`` in JSON). CPU time comes from /proc: this process, the node processes
(when their pids are known) and every other process of the machine.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] of an ascending sequence."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class Latency:
    p50: float = math.nan
    p90: float = math.nan
    p99: float = math.nan
    max: float = math.nan
    mean: float = math.nan

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        if not values:
            return cls()
        v = sorted(values)
        return cls(p50=percentile(v, 50), p90=percentile(v, 90), p99=percentile(v, 99),
                   max=v[-1], mean=sum(v) / len(v))


@dataclass
class CpuUsage:
    """Who used the CPUs during a measured interval (seconds of CPU time)."""

    wall: float
    bench: float  # this process (load generator, or the baseline itself)
    node: float | None  # the node process(es), when their pids are known (same machine)
    others: float | None  # every other process on the machine (from /proc/stat)
    cpus: int
    per_node: list[float | None] | None = None  # each node process, with several nodes

    @property
    def others_cores(self) -> float | None:
        return None if self.others is None or not self.wall else self.others / self.wall


def proc_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) used so far by process ``pid``."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _machine_busy() -> float | None:
    """CPU seconds all processes of the machine have used since boot (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            cols = [int(c) for c in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (cols + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Measures wall time and CPU time of this process, the node(s) and everybody else.

    ``node_pid`` is one node's pid or, for a network of several node processes on this
    machine, a sequence of pids: ``node`` is then their total and ``per_node`` each one's.
    """

    def __init__(self, node_pid: int | Sequence[int] | None) -> None:
        self.many = not (node_pid is None or isinstance(node_pid, int))
        self.node_pids: list[int | None] = (
            [node_pid] if node_pid is None or isinstance(node_pid, int) else list(node_pid))
        self.wall = time.perf_counter()
        self.bench = time.process_time()
        self.nodes = [proc_cpu(pid) for pid in self.node_pids]
        self.busy = _machine_busy()

    def stop(self) -> CpuUsage:
        wall = time.perf_counter() - self.wall
        bench = time.process_time() - self.bench
        nodes_now, busy_now = [proc_cpu(pid) for pid in self.node_pids], _machine_busy()
        per_node = [None if now is None or then is None else now - then
                    for now, then in zip(nodes_now, self.nodes, strict=True)]
        known = [c for c in per_node if c is not None]
        node = sum(known) if known and len(known) == len(per_node) else None
        others = None
        if busy_now is not None and self.busy is not None:
            others = max(0.0, busy_now - self.busy - bench - sum(known))
        return CpuUsage(wall=wall, bench=bench, node=node, others=others,
                        cpus=os.cpu_count() or 1, per_node=per_node if self.many else None)


@dataclass
class ErrorCount:
    count: int
    example: str


@dataclass
class BlockSeen:
    number: int
    txs: int  # all transactions in the block
    ours: int  # transactions of this phase in the block
    seen: float  # seconds since the phase's first send


@dataclass
class PhaseResult:
    label: str
    txs: int
    offered_rate: float | None  # tx/s for a rate-limited phase, None at saturation
    batch: int
    concurrency: int
    accepted: int = 0
    committed: int = 0
    rejected: int = 0
    retries: int = 0
    errors: dict[str, ErrorCount] = field(default_factory=dict)
    send_seconds: float = 0.0  # first send .. last send response
    commit_seconds: float = 0.0  # first send .. last commit seen
    tps: float = 0.0  # committed / commit_seconds
    send_tps: float = 0.0  # accepted / send_seconds (admission rate)
    max_send_lag: float = 0.0  # rate-limited phases: worst start delay behind schedule
    latency: Latency = field(default_factory=Latency)
    blocks: list[BlockSeen] = field(default_factory=list)
    timed_out: str | None = None
    receipts_checked: int = 0
    receipts_ok: int = 0
    receipt_problems: dict[str, ErrorCount] = field(default_factory=dict)
    cpu: CpuUsage | None = None  # sending and committing, receipt checks excluded
    start_block: int | None = None  # the head when the phase started
    send_urls: int = 1  # RPC endpoints the batches went to, round-robin

    @property
    def blocks_used(self) -> int:
        return sum(1 for b in self.blocks if b.ours)

    @property
    def mean_block_interval(self) -> float:
        used = [b for b in self.blocks if b.ours]
        if len(used) < 2:
            return math.nan
        return (used[-1].seen - used[0].seen) / (len(used) - 1)

    @property
    def tx_per_block(self) -> float:
        return self.committed / self.blocks_used if self.blocks_used else math.nan

    @property
    def ok(self) -> bool:
        return (self.timed_out is None and self.rejected == 0 and self.committed == self.txs
                and self.receipts_ok == self.receipts_checked)


def phase_json(phase: PhaseResult | None) -> dict[str, Any] | None:
    """A phase's fields and its derived figures (blocks used, mean block interval, tx per
    block, ok) for a JSON report; None stays None."""
    if phase is None:
        return None
    d = asdict(phase)
    d.update(blocks_used=phase.blocks_used, mean_block_interval=phase.mean_block_interval,
             tx_per_block=phase.tx_per_block, ok=phase.ok)
    return d


def count_error(errors: dict[str, ErrorCount], key: str, message: str, n: int = 1) -> None:
    entry = errors.get(key)
    if entry is None:
        errors[key] = ErrorCount(n, message)
    else:
        entry.count += n


def no_nan(value: Any) -> Any:
    """``value`` with NaN floats (statistics of empty sets) replaced by None: strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value
