"""Smoke tests of the load generator (``python -m yilian.bench.load``): tiny loads, no speed
assertions, only that every transaction commits and the report holds positive figures."""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import LocalNetwork
from yilian.bench import load, measure, views
from yilian.bench import phase as load_phase
from yilian.bench.transactions import Sender, presign
from yilian.network_configs.local import LOCAL_CHAIN_ID, dev_accounts


def test_percentile_interpolates() -> None:
    values = [float(v) for v in range(1, 101)]
    assert measure.percentile(values, 50) == pytest.approx(50.5)
    assert measure.percentile(values, 99) == pytest.approx(99.01)
    assert measure.percentile(values, 100) == 100.0
    assert measure.percentile([3.0], 99) == 3.0
    assert math.isnan(measure.percentile([], 50))


def test_presign_interleaves_senders_and_nonces() -> None:
    accounts = dev_accounts(2)
    senders = [Sender(a.address, a.private_key) for a in accounts]
    txs = presign(senders, [5, 0], 5, chain_id=LOCAL_CHAIN_ID, tag=b"t")
    assert [(t.sender, t.nonce) for t in txs] == [
        (senders[0].address, 5), (senders[1].address, 0), (senders[0].address, 6),
        (senders[1].address, 1), (senders[0].address, 7)]
    assert len({t.hash for t in txs}) == 5
    assert all(t.raw[0] == 2 for t in txs)  # type-2 (EIP-1559) envelopes


def test_send_errors_are_counted_not_dropped() -> None:
    senders = [Sender(a.address, a.private_key) for a in dev_accounts(1)]
    txs = presign(senders, [0], 3, chain_id=LOCAL_CHAIN_ID, tag=b"e")
    result = measure.PhaseResult(label="t", txs=3, offered_rate=None, batch=3, concurrency=1)
    phase = load_phase._Phase(txs, result)
    out = [
        {"jsonrpc": "2.0", "id": 0, "result": txs[0].hash},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "nonce too far",
                                              "data": {"reason": "nonce_too_high"}}},
        {"jsonrpc": "2.0", "id": 2, "error": {"code": -32000, "message": "not registered",
                                              "data": {"reason": "unauthorised"}}},
    ]
    retry = load_phase._handle_send_response(phase, load_phase._Work([0, 1, 2], None), out)
    assert retry == [1]
    assert result.accepted == 1 and result.rejected == 1
    assert {k: e.count for k, e in result.errors.items()} == {
        "nonce_too_high (retried)": 1, "-32000 unauthorised": 1}


class FakeNode:
    """A JSON-RPC stand-in behind ``httpx.MockTransport``: admits every transaction and,
    when ``produce`` is set, seals everything pending into a block at each eth_blockNumber.
    ``busy_once`` transactions are first refused with a retriable reason (nonce_too_high)."""

    def __init__(self, *, produce: bool, busy_once: int = 0) -> None:
        self.produce = produce
        self.busy_once = busy_once
        self.refused: set[str] = set()
        self.pending: list[str] = []
        self.blocks: list[list[str]] = [[]]

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if isinstance(body, list):
            return httpx.Response(200, json=[self.one(r) for r in body])
        return httpx.Response(200, json=self.one(body))

    def one(self, req: dict[str, Any]) -> dict[str, Any]:
        method, params = req["method"], req["params"]
        result: Any = None
        if method == "eth_sendRawTransaction":
            tx_hash = "0x" + keccak(bytes.fromhex(params[0][2:])).hex()
            if len(self.refused) < self.busy_once and tx_hash not in self.refused:
                self.refused.add(tx_hash)
                return {"jsonrpc": "2.0", "id": req["id"], "error": {
                    "code": -32000, "message": "nonce too far ahead",
                    "data": {"reason": "nonce_too_high"}}}
            self.pending.append(tx_hash)
            result = tx_hash
        elif method == "eth_blockNumber":
            if self.produce and self.pending:
                self.blocks.append(self.pending)
                self.pending = []
            result = hex(len(self.blocks) - 1)
        elif method == "eth_getBlockByNumber":
            number = int(params[0], 16)
            result = {"number": params[0], "transactions": self.blocks[number]}
        return {"jsonrpc": "2.0", "id": req["id"], "result": result}


def _fake_phase(node: FakeNode, count: int, *, commit_timeout: float = 5.0,
                rate: float | None = None) -> measure.PhaseResult:
    senders = [Sender(a.address, a.private_key) for a in dev_accounts(2)]
    txs = presign(senders, [0, 0], count, chain_id=LOCAL_CHAIN_ID, tag=b"fake")
    return asyncio.run(load_phase.run_phase(
        "http://fake/rpc", txs, label="fake", batch=4, concurrency=2, rate=rate,
        poll_interval=0.01, commit_timeout=commit_timeout, http_timeout=5.0,
        transport=httpx.MockTransport(node.handle)))


def test_phase_measures_commits_and_retries() -> None:
    result = _fake_phase(FakeNode(produce=True, busy_once=3), 20)
    assert result.accepted == result.committed == 20 and result.rejected == 0
    assert result.retries == 3
    assert result.errors["nonce_too_high (retried)"].count == 3
    assert result.timed_out is None and result.tps > 0 and result.blocks_used >= 1
    assert 0 <= result.latency.p50 <= result.latency.p99 <= result.latency.max


def test_phase_rate_limit_spreads_the_sends() -> None:
    result = _fake_phase(FakeNode(produce=True), 20, rate=100.0)  # 5 batches, 40 ms apart
    assert result.committed == 20
    # The last batch leaves 160 ms after the first one was due. send_seconds counts from the
    # first actual send, which a pause of this process (a GC run, a busy machine) can delay
    # by tens of ms; max_send_lag records that delay, so their sum is a strict bound.
    # (Unlimited, the 5 batches would all go within a few ms, with no lag.)
    assert result.send_seconds + result.max_send_lag >= 0.15


def test_phase_reports_a_node_that_never_commits() -> None:
    result = _fake_phase(FakeNode(produce=False), 8, commit_timeout=0.3)
    assert result.accepted == 8 and result.committed == 0
    assert result.timed_out is not None and "stopped producing blocks" in result.timed_out
    assert not result.ok


def _check_phase(phase: dict[str, object], txs: int) -> None:
    assert phase["committed"] == txs and phase["accepted"] == txs
    assert phase["rejected"] == 0 and phase["timed_out"] is None
    assert phase["receipts_ok"] == phase["receipts_checked"] == txs
    assert isinstance(phase["tps"], float) and phase["tps"] > 0
    latency = phase["latency"]
    assert isinstance(latency, dict)
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert isinstance(phase["blocks_used"], int) and phase["blocks_used"] >= 1


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_bench_end_to_end_on_its_own_network(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    code = load.main(["-n", "200", "--senders", "2", "--load-fraction", "0.5",
                      "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "node (1 validator" in text and "baseline (in-process py-evm" in text
    assert "ratio node/baseline" in text
    report = json.loads(out.read_text())
    assert report["ok"] is True
    _check_phase(report["node"], 200)
    _check_phase(report["loaded"], 200)
    assert report["loaded"]["offered_rate"] > 0
    assert report["baseline"]["txs"] == 200 and report["baseline"]["failed"] == 0
    assert report["baseline"]["tps"] > 0 and report["ratio"] > 0


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_bench_against_a_running_node(fresh_network: LocalNetwork) -> None:
    args = load.parse_args([
        "--rpc", fresh_network.rpc, "--network-file", str(fresh_network.data_dir / "network.json"),
        "-n", "120", "--senders", "3", "--batch", "7", "--concurrency", "2",
        "--skip-baseline", "--load-fraction", "0"])
    report = load.run(args)
    assert report.ok, load.format_report(report)
    assert report.baseline is None and report.loaded is None
    _check_phase(report.to_json()["node"], 120)
    assert report.node.cpu is not None and report.node.cpu.node  # pid read from network.json


# -- python -m yilian.bench.consortium ---------------------------------------------------------


def test_consortium_round_robin_spreads_batches() -> None:
    node = FakeNode(produce=True)  # one chain behind two endpoints, as gossip would make it
    hosts: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if isinstance(body, list) and body[0]["method"] == "eth_sendRawTransaction":
            hosts.append(request.url.host)
        elif request.url.host != "a":
            raise AssertionError("commits must be polled on the first endpoint only")
        return node.handle(request)

    senders = [Sender(a.address, a.private_key) for a in dev_accounts(2)]
    txs = presign(senders, [0, 0], 16, chain_id=LOCAL_CHAIN_ID, tag=b"rr")
    result = asyncio.run(load_phase.run_phase(
        "http://a/rpc", txs, label="rr", batch=4, concurrency=1, rate=None,
        poll_interval=0.01, commit_timeout=5.0, http_timeout=5.0,
        transport=httpx.MockTransport(handle), send_urls=["http://a/rpc", "http://b/rpc"]))
    assert hosts == ["a", "b", "a", "b"]
    assert result.committed == result.accepted == 16 and result.send_urls == 2
    assert result.timed_out is None and result.start_block == 0


def test_consortium_next_nonces() -> None:
    from yilian.bench import consortium

    assert consortium._next_nonces([0, 0, 0], 7) == [3, 2, 2]
    assert consortium._next_nonces([5, 1], 4) == [7, 3]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_consortium_bench_1_and_4_validators(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from yilian.bench import consortium

    out = tmp_path / "report.json"
    code = consortium.main(["--nodes", "1,4", "-n", "100", "--senders", "2",
                            "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "1 validator:" in text and "4 validators:" in text and "summary" in text
    report = json.loads(out.read_text())
    assert report["ok"] is True
    one, four = report["networks"]
    assert one["nodes"] == 1 and four["nodes"] == 4
    for net in (one, four):
        _check_phase(net["saturation"], 100)
        _check_phase(net["loaded"], 100)  # --load-fraction 0.5 by default
        assert net["loaded"]["offered_rate"] > 0
        assert net["heads_agree"] is True and net["error"] is None
        assert net["saturation"]["cpu"]["node"] > 0
        assert len(net["saturation"]["cpu"]["per_node"]) == net["nodes"]
        assert net["blocks"] and sum(b["txs"] for b in net["blocks"]) >= 100
    assert one["ratio"] == pytest.approx(1.0) and four["ratio"] > 0
    assert four["saturation"]["send_urls"] == 4
    assert all(b["round"] is not None for b in four["blocks"])


def test_records_benchmark_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m yilian.bench.records`` on a tiny load, both view modes, two caller
    counts (more callers per account than the node lets wait: the SDK waits them out):
    every call succeeds and the report holds the rates, ratios and node CPU per operation
    side by side, batched reads too (no speed assertion)."""
    from yilian.bench import records

    code = records.main(["--records", "24", "--reads", "12", "--baseline", "2",
                         "--concurrency", "4,12", "--views", "evm,reader", "--read-batch", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    for mode in ("evm", "reader"):
        assert f"views {mode}, 12 callers: published records/s" in out
    assert re.search(r"read via B, sequential \(baseline\) +2 calls .* node CPU [0-9.]+ ms/op", out)
    assert re.search(r"read via B, 12 callers, batch 3 +4 calls x3 .* node CPU [0-9.]+ ms/op",
                     out)
    assert "side by side" in out and re.search(r"evm +[0-9.]+ ms .* reader +[0-9.]+ ms", out)
    assert "errors 0" in out and not re.search(r"errors [1-9]", out)


def test_views_benchmark_compares_reader_and_evm(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m yilian.bench.views``: both views each way, cold and warm, with the ratio
    (no speed assertion; the answers were checked equal before timing)."""
    assert views.main(["--calls", "40"]) == 0
    out = capsys.readouterr().out
    for label in ("member_of   evm, cold", "member_of   reader, cold", "member_of   reader, warm",
                  "Grants.check evm, cold", "Grants.check reader, cold",
                  "Grants.check reader, warm"):
        assert re.search(re.escape(label) + r" +[0-9,]+ calls/s +[0-9.]+ µs CPU/call", out), out
    assert len(re.findall(r"x less CPU than the EVM", out)) == 4
    assert views.main(["--calls", "3"]) == 2


def test_records_benchmark_options_are_strict() -> None:
    from yilian.bench import records

    parser = records.build_parser()
    assert parser.parse_args(["--concurrency", "32,64"]).concurrency == [32, 64]
    assert parser.parse_args(["--read-batch", "32"]).read_batch == 32
    for bad in (["--concurrency", "0"], ["--concurrency", "x"], ["--views", "fast"],
                ["--read-batch", "0"], ["--read-batch", "33"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


# -- python -m yilian.bench.soak ---------------------------------------------------------------


def test_soak_slope_is_least_squares_per_minute() -> None:
    from yilian.bench import soak_report as report

    points = [(t, 100 + 0.5 * t / 60 + (0.2 if t % 20 else -0.2)) for t in range(0, 600, 10)]
    assert report.slope_per_minute(points) == pytest.approx(0.5, abs=0.01)
    assert report.slope_per_minute([(0.0, 5.0), (60.0, 5.0)]) == 0.0
    assert math.isnan(report.slope_per_minute([(0.0, 5.0)]))


def test_soak_trend_is_measured_over_the_second_half() -> None:
    from yilian.bench import soak_report as report

    def interval(minute: int, latency: float, cpu_s: float) -> report.Interval:
        return report.Interval(end=60.0 * minute, committed=100, latencies=[latency] * 100,
                             cpu=[cpu_s])

    # warm-up in the first half (slower), flat afterwards
    ivs = [interval(m, 0.5 if m <= 5 else 1.0, 2.0 if m <= 5 else 3.0) for m in range(1, 11)]
    lines = report._trend_lines(ivs)
    assert len(lines) == 3
    p99 = next(line for line in lines if "latency p99" in line)
    assert "(5 intervals)" in p99 and "mean 1.000 s" in p99 and "slope +0.0000 s/min" in p99
    cpu = next(line for line in lines if "CPU per tx" in line)
    assert "mean 30.000 ms" in cpu and "drift over the half +0.0% of the mean" in cpu
    # a real drift shows: 1.0 -> 1.4 s over minutes 6..10
    ivs = ivs[:5] + [interval(m, 1.0 + 0.1 * (m - 6), 3.0) for m in range(6, 11)]
    p99 = next(line for line in report._trend_lines(ivs) if "latency p99" in line)
    assert "slope +0.1000 s/min" in p99


def test_soak_summarises_the_memory_gauges_over_the_second_half() -> None:
    from yilian.bench import soak_report as report

    mb = 2.0**20
    gauges = [(60.0 * m, [{"yilian_leveldb_memory_bytes": min(m, 5) * mb,
                           "yilian_python_allocated_blocks": 400_000.0},
                          {}])  # the second node did not answer
              for m in range(11)]
    lines = report._gauge_lines(gauges)
    leveldb = next(line for line in lines if "LevelDB" in line)
    assert "node 1 0.0 -> 5.0 (+0.00/min)" in leveldb and "(MB;" in leveldb
    assert "node 2" not in leveldb
    blocks = next(line for line in lines if "Python allocated blocks" in line)
    assert "node 1 400.0 -> 400.0 (+0.00/min)" in blocks and "(k;" in blocks
    assert not any("malloc" in line for line in lines)  # gauges no node reported
    assert report._gauge_lines([]) == []
    # resident anonymous memory that malloc does not account for (pymalloc arenas, stacks)
    row = {"yilian_resident_anon_bytes": 50 * mb, "yilian_malloc_in_use_bytes": 30 * mb,
           "yilian_malloc_free_bytes": 5 * mb}
    outside = next(line for line in report._gauge_lines([(60.0 * m, [row]) for m in range(3)])
                   if "outside malloc" in line)
    assert "node 1 15.0 -> 15.0 (+0.00/min)" in outside


def test_leveldb_log_reader_pairs_flushes_and_compactions_of_a_real_database(
        tmp_path: Path) -> None:
    import os

    import plyvel

    from yilian.bench.leveldb_log import LogReader, find_logs

    (tmp_path / "db").mkdir()
    db = plyvel.DB(str(tmp_path / "db" / "leveldb"), create_if_missing=True,
                   write_buffer_size=256 * 1024)
    [log] = find_logs(tmp_path)
    reader = LogReader(log)
    first: list = []
    for k in range(40_000):
        db.put(os.urandom(16), os.urandom(100))  # random keys: tables overlap, so compact
        if k == 20_000:
            first = reader.read()
    db.close()
    events = first + reader.read()
    kinds = {e.kind for e in events}
    assert kinds == {"flush", "compaction"}, events
    assert all(e.end >= e.start and e.written > 0 for e in events)
    assert reader.read() == []  # each event once
    assert LogReader(tmp_path / "missing").read() == []


@given(st.lists(st.one_of(
    st.text(max_size=80),
    st.sampled_from(["2026/12/07-21:17:16.361411 1 Compacting 4@0 + 1@1 files",
                     "2026/12/07-21:17:16.477749 1 Compacted 4@0 + 1@1 files => 44 bytes",
                     "2026/12/07-21:17:16.477749 2 Compacted 4@0 + 1@1 files => 44 bytes",
                     "2026/12/07-21:17:13.020108 1 Level-0 table #5: started",
                     "2026/12/07-21:17:13.036432 1 Level-0 table #5: 895298 bytes OK",
                     "2026/13/45-99:17:13.036432 1 Level-0 table #5: started"])),
    max_size=30), st.integers(1, 200))
def test_leveldb_log_reader_never_raises_and_splits_lines_anywhere(
        lines: list[str], cut: int) -> None:
    import tempfile

    from yilian.bench.leveldb_log import LogReader

    data = "\n".join(lines).encode() + b"\n"
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "LOG"
        log.write_bytes(data[:cut])
        reader = LogReader(log)
        events = reader.read()
        log.write_bytes(data)
        events += reader.read()
        whole = LogReader(log).read()
    assert events == whole  # a line written in two parts reads as one
    assert all(e.kind in ("flush", "compaction") and e.written >= 0 for e in events)


def test_soak_tail_lines_compare_slow_intervals_with_the_rest() -> None:
    from yilian.bench import soak_report as report

    ivs = []
    for m in range(4):
        i = report.Interval(end=60.0 * (m + 1), committed=10, blocks=60,
                            late_blocks=1 if m == 3 else 0,
                            latencies=[3.0 if m == 3 else 1.0] * 10)
        i.compaction_s, i.compactions, i.compacted_mb = [m * 1.0, 0.0], [m, 0], [2.0 * m, 0.0]
        ivs.append(i)
    lines = report._tail_lines(ivs)
    assert "node 1 6 taking 6.0 s, 12 MB written" in lines[0]
    assert "node 2 0 taking 0.0 s" in lines[0]
    assert "blocks 240, decided after round 0: 1" in lines
    assert "after round 0 (1): 3.000 s; without (3): 1.000 s" in lines[2]
    assert "(2.00 s, all nodes; 1): 3.000 s; the rest (3): 1.000 s" in lines[3]


def test_soak_node_env_sets_a_variable_for_one_node_only() -> None:
    from yilian.bench import soak

    args = soak.build_parser().parse_args(["--node-env", "center-1:MALLOC_ARENA_MAX=2",
                                           "--node-env", "center-1:X=a=b"])
    assert soak.node_env(args.node_env) == {"center-1": {"MALLOC_ARENA_MAX": "2", "X": "a=b"}}
    with pytest.raises(SystemExit):
        soak.build_parser().parse_args(["--node-env", "MALLOC_ARENA_MAX=2"])


def test_soak_reads_rss_and_cpu_of_a_process() -> None:
    import os

    from yilian.bench import soak_report as report

    rss, cpu = report.rss_mb(os.getpid()), measure.proc_cpu(os.getpid())
    assert rss is not None and rss > 1 and cpu is not None and cpu > 0
    assert report.rss_mb(2**22 + 1) is None and measure.proc_cpu(2**22 + 1) is None


def test_soak_transfer_is_a_zero_fee_type_2_value_transfer() -> None:
    from yilian.bench import soak
    from yilian.node.genesis import YilianVM

    account = dev_accounts(1)[0]
    raw, tx_hash = soak.sign_transfer(Sender(account.address, account.private_key), 3,
                                      LOCAL_CHAIN_ID)
    tx = YilianVM.get_transaction_builder().decode(bytes.fromhex(raw[2:]))
    assert "0x" + bytes(tx.hash).hex() == tx_hash
    assert (tx.nonce, tx.value, tx.gas, tx.data, tx.max_fee_per_gas) == (
        3, 1, soak.TRANSFER_GAS, b"", 0)
    assert "0x" + bytes(tx.to).hex() == soak.SINK and tx.sender.hex() == \
        account.address[2:].lower()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_soak_bench_runs_on_4_validators(capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny soak with tracemalloc on one node: every tx commits, the report has its
    figures and the snapshot comparison (no speed or memory assertion)."""
    from yilian.bench import soak

    code = soak.main(["--minutes", "0.5", "--rate", "4", "--nodes", "4", "--interval", "10",
                      "--sample", "2", "--tracemalloc", "8", "--frames", "5",
                      "--trace-node", "center-2", "--node-env", "center-1:MALLOC_ARENA_MAX=2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "failed 0" in out and "committed 120" in out
    assert "all nodes: RSS slope over the second half" in out and "p99 last/first" in out
    assert "anonymous RSS (heap) slope" in out
    assert "ms per committed tx" in out
    assert "center-2-" in out and "traced " in out and "center-1-" not in out
    assert "LevelDB tables at the end: node 1 " in out and "malloc free in arenas" in out
    assert "blk r>0 cmp s" in out and "decided after round 0:" in out


def test_tracemalloc_plan_parses_and_names_the_bad_part(tmp_path: Path) -> None:
    from yilian.node import diagnostics as d

    assert d.parse_plan(f"{tmp_path},60") == d.SnapshotPlan(tmp_path, 60.0, 1, None)
    assert d.parse_plan(f"{tmp_path},0.5,0,center-2") == d.SnapshotPlan(tmp_path, 0.5, 0,
                                                                          "center-2")
    for bad in ("", f"{tmp_path}", ",60", f"{tmp_path},x", f"{tmp_path},0",
                f"{tmp_path},60,101", f"{tmp_path},60,1,a,b"):
        with pytest.raises(d.DiagnosticsError, match="YILIAN_TRACEMALLOC"):
            d.parse_plan(bad)


def test_object_census_snapshots_compare(tmp_path: Path) -> None:
    from yilian.node import diagnostics as d

    writer = d.SnapshotWriter(d.SnapshotPlan(tmp_path, 3600.0, 0), "center-9")
    writer.plan.directory.mkdir(exist_ok=True)
    first = writer.write_one()
    kept = [d.SnapshotPlan(tmp_path, float(i)) for i in range(5000)]  # grows by 5000
    second = writer.write_one()
    assert first.name.endswith("-00000.census.json") and second.name.endswith("-00001.census.json")
    report = d.compare_snapshots(tmp_path)
    assert "center-9-" in report and "yilian.node.diagnostics.SnapshotPlan" in report
    assert len(kept) == 5000
