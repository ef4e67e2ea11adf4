"""The load benchmark's report: node phase, in-process baseline, their ratio and the
rate-limited phase, as text (:func:`format_report`) and as JSON (``Report.to_json``).

The goals: node tx/s at least 0.7 of the baseline's, and p99 commit latency under 2 s at
the offered fraction of it. Other processes' CPU use during a phase is reported as a note.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from yilian.bench.baseline import BaselineResult
from yilian.bench.measure import CpuUsage, ErrorCount, PhaseResult, no_nan, phase_json


@dataclass
class Report:
    rpc: str
    own_network: bool
    chain_id: int
    senders: int
    node: PhaseResult
    baseline: BaselineResult | None = None
    ratio: float | None = None
    load_fraction: float | None = None
    load_basis: str | None = None  # "baseline" or "node" (when the baseline was skipped)
    loaded: PhaseResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.node.ok and (self.loaded is None or self.loaded.ok)
                and (self.baseline is None or self.baseline.failed == 0))

    @property
    def cpu_ratio(self) -> float | None:
        """Baseline CPU seconds per tx over node CPU seconds per tx (None if unknown)."""
        b, n = self.baseline, self.node
        if b is None or b.cpu is None or n.cpu is None or not n.cpu.node or not n.committed:
            return None
        return (b.cpu.bench / b.txs) / (n.cpu.node / n.committed)

    def interference(self) -> list[str]:
        """Warnings when other processes used a noticeable share of the CPUs."""
        out = []
        for name, cpu in (("node phase", self.node.cpu),
                          ("baseline", self.baseline.cpu if self.baseline else None),
                          ("loaded phase", self.loaded.cpu if self.loaded else None)):
            cores = cpu.others_cores if cpu else None
            if cpu is not None and cores is not None and cores > 0.25:
                out.append(f"other processes kept {cores:.2f} of {cpu.cpus} CPUs busy during "
                           f"the {name}: its figures are disturbed; rerun on a quiet machine")
        return out

    @property
    def goals_met(self) -> bool:
        ratio_ok = self.ratio is not None and self.ratio >= 0.7
        p99_ok = self.loaded is not None and self.loaded.latency.p99 < 2.0
        return ratio_ok and p99_ok

    def to_json(self) -> dict[str, Any]:
        return no_nan({
            "rpc": self.rpc, "own_network": self.own_network, "chain_id": self.chain_id,
            "senders": self.senders, "node": phase_json(self.node),
            "baseline": asdict(self.baseline) if self.baseline else None,
            "ratio": self.ratio, "load_fraction": self.load_fraction,
            "load_basis": self.load_basis, "loaded": phase_json(self.loaded),
            "cpu_ratio": self.cpu_ratio, "ok": self.ok, "goals_met": self.goals_met,
            "notes": self.notes + self.interference(),
        })


def _fmt_errors(errors: dict[str, ErrorCount]) -> list[str]:
    return [f"    {e.count} x {key}: {e.example}"
            for key, e in sorted(errors.items(), key=lambda kv: -kv[1].count)]


def _fmt_cpu(cpu: CpuUsage | None, txs: int, who: str) -> str | None:
    if cpu is None or not cpu.wall:
        return None
    parts = [f"{who} {cpu.bench:.1f} s"]
    if cpu.node is not None:
        parts.insert(0, f"node {cpu.node:.1f} s ({cpu.node * 1000 / max(txs, 1):.2f} ms/tx, "
                        f"{cpu.node / cpu.wall:.2f} cores)")
    if cpu.others is not None:
        parts.append(f"other processes {cpu.others:.1f} s ({cpu.others / cpu.wall:.2f} cores)")
    return f"  CPU over {cpu.wall:.1f} s on {cpu.cpus} CPUs: " + ", ".join(parts)


def phase_details(p: PhaseResult) -> list[str]:
    lines = [
        f"  sent {p.txs} in {p.send_seconds:.2f} s ({p.send_tps:.0f} tx/s admitted), "
        f"accepted {p.accepted}, rejected {p.rejected}, retried {p.retries}; "
        f"committed {p.committed}",
        f"  blocks {p.blocks_used}: mean interval {p.mean_block_interval:.2f} s, "
        f"{p.tx_per_block:.0f} tx/block (largest {max((b.ours for b in p.blocks), default=0)})"
        f"; latency mean {p.latency.mean:.2f} s p90 {p.latency.p90:.2f} s",
    ]
    used = [b for b in p.blocks if b.ours]
    shown = " ".join(f"#{b.number}:{b.ours}@{b.seen:.2f}s" for b in used[:12])
    lines.append(f"  commits (block:txs@seen): {shown}" + (" ..." if len(used) > 12 else ""))
    cpu = _fmt_cpu(p.cpu, p.committed, "load generator")
    if cpu:
        lines.append(cpu)
    lines.append(f"  receipts: {p.receipts_ok}/{p.receipts_checked} with status 1")
    if p.offered_rate:
        lines.append(f"  schedule: worst send lag {p.max_send_lag * 1000:.0f} ms behind "
                     "the offered rate")
    if p.errors:
        lines.append("  send errors by kind:")
        lines += _fmt_errors(p.errors)
    if p.receipt_problems:
        lines.append("  receipt problems:")
        lines += _fmt_errors(p.receipt_problems)
    if p.timed_out:
        lines.append(f"  ERROR: {p.timed_out}")
    return lines


def format_report(r: Report) -> str:
    n = r.node
    where = "1 validator" if r.own_network else r.rpc
    lines = [
        f"node ({where}, http batch {n.batch}, concurrency {n.concurrency}): {n.committed} tx "
        f"committed in {n.commit_seconds:.2f} s = {n.tps:.0f} tx/s; latency p50 "
        f"{n.latency.p50:.2f} s p99 {n.latency.p99:.2f} s max {n.latency.max:.2f} s; "
        f"{n.blocks_used} blocks",
        *phase_details(n),
    ]
    b = r.baseline
    if b is not None:
        lines.append(f"baseline (in-process py-evm, blocks of {b.block_txs}): {b.txs} tx in "
                     f"{b.seconds:.2f} s = {b.tps:.0f} tx/s")
        lines.append(f"  decode + sender recovery {b.decode_seconds:.2f} s, {b.blocks} blocks"
                     + (f"; {b.failed} FAILED transactions" if b.failed else ""))
        cpu = _fmt_cpu(b.cpu, b.txs, "baseline")
        if cpu:
            lines.append(cpu)
    if r.ratio is not None:
        verdict = "met" if r.ratio >= 0.7 else "NOT met"
        lines.append(f"ratio node/baseline = {r.ratio:.2f} (goal >= 0.70: {verdict})")
        cpu_ratio = r.cpu_ratio
        if cpu_ratio is not None:
            lines.append(f"  CPU time per tx, baseline/node = {cpu_ratio:.2f} (less sensitive "
                         "to other load on the machine)")
    if r.loaded is not None and r.load_fraction is not None:
        p = r.loaded
        verdict = "met" if p.latency.p99 < 2.0 else "NOT met"
        lines.append(
            f"at {r.load_fraction * 100:.0f}% of {r.load_basis} ({p.offered_rate:.0f} tx/s "
            f"offered): {p.committed} tx committed at {p.tps:.0f} tx/s; latency p50 "
            f"{p.latency.p50:.2f} s p99 {p.latency.p99:.2f} s max {p.latency.max:.2f} s; "
            f"{p.blocks_used} blocks (goal p99 < 2 s: {verdict})")
        lines += phase_details(p)
    lines += [f"note: {note}" for note in r.notes + r.interference()]
    return "\n".join(lines)
