"""Helpers for the multi-process consortium tests (``tests/test_consortium.py``).

* :class:`Spawner` is the ``spawner`` the tests give ``launcher.up``: it keeps each node's
  ``Popen`` (exit codes) and can give one node extra environment (fault injection);
  :func:`spawning` is the one way the tests make one and reap its processes afterwards.
* :class:`Cluster` drives a network directory: health, peers, kill/stop/start one node,
  logs; :func:`running_cluster` starts a new one and waits for the full mesh.
* :class:`Load` is a background thread sending RecordStore puts from several dev accounts
  to a changeable set of nodes, retrying a batch on another node when one dies, and
  polling receipts (remembering which node returned each).
* :class:`Proxy` is a userspace TCP forwarder that can drop all its traffic.
* The ``wait_*`` / ``assert_*`` helpers check agreement between nodes and always say what
  they observed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import plyvel
import pytest
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from yilian.cli import launcher
from yilian.cli.launcher import free_port_range
from yilian.network_configs.local import RECORD_STORE_ADDRESS
from yilian.node.storage import EVIDENCE, INDEX, LAST_SIGNED, WAL

Json = dict[str, Any]

PUT_SELECTOR = keccak(b"put(bytes32,bytes32)")[:4]
RECORD_STORE = to_checksum_address(RECORD_STORE_ADDRESS)
EVIDENCE_PREFIX = INDEX + EVIDENCE
WAL_LAST_SIGNED = WAL + LAST_SIGNED


# -- processes -------------------------------------------------------------------------------


class Spawner:
    """A :class:`launcher.Spawner`: the node's command line, keeps the ``Popen`` objects and
    adds ``env[node name]`` to that node's environment."""

    def __init__(self) -> None:
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.env: dict[str, dict[str, str]] = {}

    def __call__(self, entry: dict[str, Any]) -> int:
        env = dict(os.environ)
        env.update(self.env.get(entry["name"], {}))
        with open(entry["log"], "ab") as log:
            proc = subprocess.Popen(
                launcher.node_command(entry),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, env=env,
            )
        self.procs[proc.pid] = proc
        return proc.pid

    def reap(self) -> None:
        """Kill (SIGKILL) and reap anything still running: the last line of defence."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


@contextlib.contextmanager
def spawning() -> Iterator[Spawner]:
    """A :class:`Spawner` whose processes are all killed and reaped on exit."""
    spawner = Spawner()
    try:
        yield spawner
    finally:
        spawner.reap()


@pytest.fixture(name="spawner")
def spawner_fixture() -> Iterator[Spawner]:
    """The tests' ``spawner`` fixture (a test module imports it): one :class:`Spawner` per
    test, its processes reaped afterwards."""
    with spawning() as sp:
        yield sp


class Cluster:
    """A network directory (``network.json`` + node homes) whose nodes run as processes."""

    def __init__(self, data_dir: Path, spawner: Spawner) -> None:
        self.data_dir = data_dir.resolve()
        self.spawner = spawner
        self.info: Json = launcher.read_network(self.data_dir)

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    def start_new(cls, data_dir: Path, spawner: Spawner, nodes: int = 4) -> Cluster:
        launcher.up(data_dir, nodes=nodes, base_port=free_port_range(2 * nodes + 10),
                    spawner=spawner)
        return cls(data_dir, spawner)

    def up(self) -> None:
        """``yilian up`` on the directory: starts every node that is not running."""
        self.info = launcher.up(self.data_dir, spawner=self.spawner)

    def down(self) -> None:
        if (self.data_dir / launcher.NETWORK_FILE).exists():
            launcher.down(self.data_dir)

    def reload(self) -> None:
        self.info = launcher.read_network(self.data_dir)

    @property
    def nodes(self) -> list[Json]:
        return list(self.info["nodes"])

    @property
    def size(self) -> int:
        return len(self.info["nodes"])

    def name(self, i: int) -> str:
        return str(self.info["nodes"][i]["name"])

    def rpc_url(self, i: int) -> str:
        return str(self.info["nodes"][i]["rpc"])

    def home(self, i: int) -> Path:
        return Path(self.info["nodes"][i]["home"])

    def p2p_port(self, i: int) -> int:
        return int(str(self.info["nodes"][i]["p2p"]).rsplit(":", 1)[1])

    def node_key(self, i: int) -> bytes:
        return bytes.fromhex(str(self.info["nodes"][i]["nodeKey"])[2:])

    def pid(self, i: int) -> int:
        self.reload()
        pid = self.info["nodes"][i]["pid"]
        assert pid, f"{self.name(i)} has no pid in network.json"
        return int(pid)

    def proc(self, i: int) -> subprocess.Popen[bytes]:
        return self.spawner.procs[self.pid(i)]

    def stop_node(self, i: int, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int:
        """Send ``sig`` to node ``i`` and wait until it is gone; returns its exit code."""
        proc = self.proc(i)
        os.kill(proc.pid, sig)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
            pytest.fail(f"{self.name(i)} (pid {proc.pid}) ignored signal {sig} for {timeout}s")
        return code

    def start_node(self, i: int, timeout: float = 60.0) -> None:
        """Start only node ``i`` (``launcher.up`` would start every stopped node)."""
        network = launcher.read_network(self.data_dir)
        entry = network["nodes"][i]
        assert not launcher._alive(entry.get("pid"), entry["home"]), f"{entry['name']} runs"
        entry["pid"] = self.spawner(entry)
        launcher._write_network(self.data_dir, network)
        launcher._wait_healthy([entry], timeout)
        self.info = network

    # -- observation -------------------------------------------------------------------------
    def health(self, i: int, timeout: float = 5.0) -> Json | None:
        try:
            resp = httpx.get(self.rpc_url(i).rsplit("/rpc", 1)[0] + "/healthz", timeout=timeout)
            resp.raise_for_status()
            data: Json = resp.json()
            return data
        except (httpx.HTTPError, ValueError):
            return None

    def head(self, i: int) -> int | None:
        h = self.health(i)
        return None if h is None else int(h["head"]["number"])

    def peers(self, i: int) -> int | None:
        """How many consensus peers node ``i`` reports connected (None: it does not answer)."""
        return (self.health(i) or {}).get("consensus", {}).get("peers")

    def have_peers(self, nodes: Iterable[int], n: int) -> bool:
        """True iff every one of ``nodes`` reports ``n`` connected consensus peers."""
        return all(self.peers(i) == n for i in nodes)

    def heads(self, nodes: Iterable[int] | None = None) -> dict[str, int | None]:
        idx = range(self.size) if nodes is None else nodes
        return {self.name(i): self.head(i) for i in idx}

    def describe(self, nodes: Iterable[int] | None = None) -> str:
        """One line per node: head number/hash, consensus height/round/step/peers."""
        idx = range(self.size) if nodes is None else nodes
        lines = []
        for i in idx:
            h = self.health(i)
            if h is None:
                lines.append(f"  {self.name(i)}: not answering")
                continue
            c = h.get("consensus") or {}
            lines.append(
                f"  {self.name(i)}: head {h['head']['number']} {h['head']['hash'][:14]} "
                f"root {h['head']['stateRoot'][:14]} mempool {h['mempool']} | consensus "
                f"h{c.get('height')} r{c.get('round')} {c.get('step')} peers {c.get('peers')} "
                f"lastError {c.get('lastError')}")
        return "\n".join(lines)

    def log_path(self, i: int) -> Path:
        return Path(self.info["nodes"][i]["log"])

    def log_text(self, i: int, start: int = 0) -> str:
        data = self.log_path(i).read_bytes()[start:]
        return data.decode(errors="replace")

    def log_size(self, i: int) -> int:
        path = self.log_path(i)
        return path.stat().st_size if path.exists() else 0

    def rpc(self, i: int, method: str, params: list[Any] | None = None) -> Any:
        return rpc(self.rpc_url(i), method, params)


@contextlib.contextmanager
def running_cluster(data_dir: Path, nodes: int = 4) -> Iterator[Cluster]:
    """A new network of ``nodes`` centers, started, each connected to all the others; on
    exit it is stopped and its processes reaped."""
    with spawning() as spawner:
        cluster: Cluster | None = None
        try:
            cluster = Cluster.start_new(data_dir, spawner, nodes=nodes)
            started = cluster
            wait_for(lambda: started.have_peers(range(nodes), nodes - 1), 60,
                     f"all {nodes} centers connected", started.describe)
            yield cluster
        finally:
            if cluster is not None:
                cluster.down()


# -- JSON-RPC --------------------------------------------------------------------------------


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 10) -> Any:
    resp = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                 "params": params or []}, timeout=timeout)
    resp.raise_for_status()
    body = resp.json()
    assert "error" not in body, f"{method} on {url}: {body}"
    return body["result"]


def batch(client: httpx.Client, url: str, calls: list[tuple[str, list[Any]]]) -> list[Json]:
    """One JSON-RPC batch; responses in request order (matched by id)."""
    payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
               for i, (m, p) in enumerate(calls)]
    resp = client.post(url, json=payload)
    resp.raise_for_status()
    by_id = {item["id"]: item for item in resp.json()}
    assert set(by_id) == set(range(len(calls))), resp.text[:500]
    return [by_id[i] for i in range(len(calls))]


def batched_results(client: httpx.Client, url: str, method: str, params: list[list[Any]],
                    size: int = 200) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(params), size):
        for item in batch(client, url, [(method, p) for p in params[i:i + size]]):
            assert "error" not in item, f"{method} on {url}: {item}"
            out.append(item["result"])
    return out


def block_hashes(client: httpx.Client, url: str, upto: int) -> list[str]:
    blocks = batched_results(client, url, "eth_getBlockByNumber",
                             [[hex(n), False] for n in range(upto + 1)])
    assert all(b is not None for b in blocks), f"{url} is missing blocks <= {upto}"
    return [b["hash"] for b in blocks]


# -- waiting ---------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             observe: Callable[[], str] | None = None, interval: float = 0.25) -> float:
    """Poll ``predicate`` until true; returns the seconds it took. On timeout the failure
    says what was waited for and, with ``observe``, what was seen last."""
    start = time.monotonic()
    deadline = start + timeout
    while not predicate():
        if time.monotonic() > deadline:
            seen = f"\nobserved:\n{observe()}" if observe is not None else ""
            pytest.fail(f"gave up after {timeout:.0f}s waiting for {what}{seen}")
        time.sleep(interval)
    return time.monotonic() - start


def wait_heads_at_least(cluster: Cluster, nodes: Iterable[int], target: int, timeout: float,
                        what: str) -> float:
    idx = list(nodes)

    def ok() -> bool:
        heads = [cluster.head(i) for i in idx]
        return all(h is not None and h >= target for h in heads)

    return wait_for(ok, timeout, f"{what} (heads of {[cluster.name(i) for i in idx]} "
                    f">= {target})", lambda: cluster.describe())


def max_head(cluster: Cluster, nodes: Iterable[int]) -> int:
    heads = [cluster.head(i) for i in nodes]
    return max(h for h in heads if h is not None)


# -- agreement -------------------------------------------------------------------------------


def assert_no_fork(cluster: Cluster, nodes: Iterable[int]) -> int:
    """Every height that all of ``nodes`` have carries the same block hash on each.

    Returns the common height checked."""
    idx = list(nodes)
    heads = {i: cluster.head(i) for i in idx}
    assert all(h is not None for h in heads.values()), cluster.describe()
    common = min(h for h in heads.values() if h is not None)
    with httpx.Client(timeout=30) as client:
        chains = {i: block_hashes(client, cluster.rpc_url(i), common) for i in idx}
    first = idx[0]
    for i in idx[1:]:
        for n in range(common + 1):
            assert chains[i][n] == chains[first][n], (
                f"fork at height {n}: {cluster.name(first)} has {chains[first][n]}, "
                f"{cluster.name(i)} has {chains[i][n]}\n{cluster.describe()}")
    return common


def same_heads(cluster: Cluster, nodes: Iterable[int]) -> bool:
    hs = [cluster.health(i) for i in nodes]
    return all(h is not None for h in hs) and len({
        (h["head"]["number"], h["head"]["hash"], h["head"]["stateRoot"])
        for h in hs if h is not None}) == 1


def no_equivocation_in_logs(cluster: Cluster, nodes: Iterable[int] | None = None) -> None:
    idx = range(cluster.size) if nodes is None else nodes
    for i in idx:
        text = cluster.log_text(i)
        bad = [line for line in text.splitlines() if "equivocation by validator" in line]
        assert not bad, f"{cluster.name(i)} recorded equivocation evidence: {bad[:5]}"


def evidence_records(home: Path) -> list[tuple[bytes, bytes]]:
    """``i`` + ``ev`` records in a stopped node's LevelDB."""
    db = plyvel.DB(str(home / "data" / "leveldb"), create_if_missing=False)
    try:
        return [(bytes(k), bytes(v)) for k, v in db.iterator(prefix=EVIDENCE_PREFIX)]
    finally:
        db.close()


def read_last_signed(home: Path) -> bytes | None:
    """The signing guard's last-signed record (msgpack) in a stopped node's LevelDB."""
    db = plyvel.DB(str(home / "data" / "leveldb"), create_if_missing=False)
    try:
        raw = db.get(WAL_LAST_SIGNED)
        return None if raw is None else bytes(raw)
    finally:
        db.close()


# -- the load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedTx:
    raw: str
    hash: str
    sender: int
    nonce: int


def sign_put(private_key: str, chain_id: int, nonce: int, label: bytes) -> SignedTx:
    acct = Account.from_key(private_key)
    signed = Account.sign_transaction({
        "type": 2, "chainId": chain_id, "nonce": nonce, "to": RECORD_STORE,
        "value": 0, "gas": 100_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
        "data": PUT_SELECTOR + keccak(label + b"-key") + keccak(label + b"-value"),
    }, acct.key)
    return SignedTx("0x" + bytes(signed.raw_transaction).hex(),
                    "0x" + bytes(signed.hash).hex(), -1, nonce)


SINK = "0x000000000000000000000000000000000000dEaD"  # no code: any calldata succeeds


def sign_large(private_key: str, chain_id: int, nonce: int, data_bytes: int) -> SignedTx:
    """A transaction carrying ``data_bytes`` of random calldata to a code-less address."""
    acct = Account.from_key(private_key)
    signed = Account.sign_transaction({
        "type": 2, "chainId": chain_id, "nonce": nonce, "to": SINK, "value": 0,
        # EIP-7623 (Prague): random calldata costs at least 40 gas a byte
        "gas": 21_000 + 40 * data_bytes + 10_000, "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0, "data": os.urandom(data_bytes),
    }, acct.key)
    return SignedTx("0x" + bytes(signed.raw_transaction).hex(),
                    "0x" + bytes(signed.hash).hex(), -1, nonce)


def log_lines(cluster: Cluster, needle: str, width: int = 160) -> list[str]:
    """Lines of every node's log containing ``needle`` (shortened), for failure messages."""
    out = []
    for i in range(cluster.size):
        for line in cluster.log_text(i).splitlines():
            if needle in line:
                out.append(line[:width])
    return out


# Rejections that mean "this very transaction is already there" (sent twice after a retry).
_ALREADY = {"known", "nonce_too_low"}


@dataclass
class Load:
    """Steady RecordStore puts from ``senders`` (dev account indices), round-robin over the
    ``targets`` nodes, at most ``max_in_flight`` accepted transactions without a receipt.

    A batch whose node does not answer is retried, same raw transactions, on the next
    target: nothing signed is ever abandoned, so no sender ends up with a nonce gap.
    """

    cluster: Cluster
    senders: tuple[int, ...] = (0, 1, 2, 3)
    targets: list[int] = field(default_factory=list)
    tick: float = 0.2
    max_in_flight: int = 60
    limit: int = 1500
    label: bytes = b"load"
    txs: dict[str, SignedTx] = field(default_factory=dict)
    unsent: list[SignedTx] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    receipts: dict[str, tuple[int, Json]] = field(default_factory=dict)
    rejected: list[tuple[str, Json]] = field(default_factory=list)
    send_failures: list[tuple[str, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _nonces: dict[int, int] = field(default_factory=dict)
    _rr_send: int = 0
    _rr_poll: int = 0

    def __post_init__(self) -> None:
        if not self.targets:
            self.targets = list(range(self.cluster.size))
        self._keys = {s: str(self.cluster.info["accounts"][s]["privateKey"])
                      for s in self.senders}
        self._chain_id = int(self.cluster.info["chainId"])
        self._nonces = {s: 0 for s in self.senders}

    # -- control -------------------------------------------------------------------------
    def start(self) -> Load:
        self._thread = threading.Thread(target=self._guarded, name="load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(30)
            assert not self._thread.is_alive(), "the load thread did not stop"
        assert not self.errors, f"the load thread failed: {self.errors!r}"

    def set_targets(self, targets: Iterable[int]) -> None:
        with self.lock:
            self.targets = list(targets)

    # -- counters --------------------------------------------------------------------------
    def counts(self) -> tuple[int, int, int]:
        """(signed, accepted, with receipt)."""
        with self.lock:
            return len(self.txs), len(self.accepted), len(self.receipts)

    def wait_receipts(self, n: int, timeout: float) -> None:
        wait_for(lambda: self.counts()[2] >= n or bool(self.errors), timeout,
                 f"{n} receipts from the load", lambda: f"{self.summary()}\n"
                 f"{self.cluster.describe()}")
        assert not self.errors, self.errors

    def summary(self) -> str:
        signed, accepted, receipts = self.counts()
        with self.lock:
            fails = self.send_failures[-3:]
            rejected = self.rejected[:3]
        return (f"load: {signed} signed, {accepted} accepted, {receipts} receipts, "
                f"{len(self.unsent)} unsent; last send failures {fails}; rejected {rejected}")

    # -- the thread ------------------------------------------------------------------------
    def _guarded(self) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                while not self.stop_event.is_set():
                    self._send_some(client)
                    self._poll_receipts(client)
                    self.stop_event.wait(self.tick)
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    def _next(self, which: str) -> int | None:
        with self.lock:
            targets = list(self.targets)
        if not targets:
            return None
        if which == "send":
            self._rr_send += 1
            return targets[self._rr_send % len(targets)]
        self._rr_poll += 1
        return targets[self._rr_poll % len(targets)]

    def _send_some(self, client: httpx.Client) -> None:
        with self.lock:
            in_flight = len(self.accepted) - len(self.receipts)
        if not self.unsent and (in_flight >= self.max_in_flight or len(self.txs) >= self.limit):
            return
        if not self.unsent:
            for s in self.senders:
                nonce = self._nonces[s]
                self._nonces[s] += 1
                tx = sign_put(self._keys[s], self._chain_id, nonce,
                              self.label + b"-%d-%d" % (s, nonce))
                tx = SignedTx(tx.raw, tx.hash, s, nonce)
                with self.lock:
                    self.txs[tx.hash] = tx
                self.unsent.append(tx)
        node = self._next("send")
        if node is None:
            return
        chunk = list(self.unsent)
        try:
            responses = batch(client, self.cluster.rpc_url(node),
                              [("eth_sendRawTransaction", [t.raw]) for t in chunk])
        except httpx.HTTPError as exc:  # that node is down: the next tick tries another
            with self.lock:
                self.send_failures.append((self.cluster.name(node), repr(exc)))
            return
        self.unsent = []
        with self.lock:
            for tx, resp in zip(chunk, responses, strict=True):
                if "result" in resp:
                    assert resp["result"] == tx.hash, resp
                    self.accepted.append(tx.hash)
                elif ((resp.get("error") or {}).get("data") or {}).get("reason") in _ALREADY:
                    self.accepted.append(tx.hash)
                else:
                    self.rejected.append((tx.hash, resp))

    def _poll_receipts(self, client: httpx.Client) -> None:
        with self.lock:
            waiting = [h for h in self.accepted if h not in self.receipts][:300]
        node = self._next("poll")
        if not waiting or node is None:
            return
        try:
            responses = batch(client, self.cluster.rpc_url(node),
                              [("eth_getTransactionReceipt", [h]) for h in waiting])
        except httpx.HTTPError:
            return
        with self.lock:
            for h, resp in zip(waiting, responses, strict=True):
                if resp.get("result") is not None:
                    self.receipts[h] = (node, resp["result"])


def assert_converged(cluster: Cluster, load: Load, nodes: Iterable[int],
                     timeout: float = 90.0) -> Json:
    """After the load stopped: every accepted transaction commits on every node, all nodes
    report the same head (number, hash, state root), the same block at every height, and
    every receipt any node returned is identical on every node. Returns the common head."""
    idx = list(nodes)
    with load.lock:
        assert not load.rejected, f"the nodes rejected transactions: {load.rejected[:5]}"
        accepted = list(load.accepted)
    assert not load.unsent, f"{len(load.unsent)} signed transactions never reached a node"
    missing: dict[int, set[str]] = {i: set(accepted) for i in idx}

    def all_committed() -> bool:
        with httpx.Client(timeout=30) as client:
            for i in idx:
                todo = sorted(missing[i])
                if not todo:
                    continue
                try:
                    found = batched_results(client, cluster.rpc_url(i),
                                            "eth_getTransactionReceipt", [[h] for h in todo])
                except httpx.HTTPError:
                    return False
                for h, r in zip(todo, found, strict=True):
                    if r is not None:
                        missing[i].discard(h)
        return not any(missing.values())

    wait_for(all_committed, timeout, f"all {len(accepted)} accepted transactions to commit "
             "on every node",
             lambda: "missing per node: " + str({cluster.name(i): len(m)
                                                  for i, m in missing.items()})
             + "\n" + cluster.describe(idx), interval=0.5)
    wait_for(lambda: same_heads(cluster, idx), 60, "the same head on every node",
             lambda: cluster.describe(idx))
    health = cluster.health(idx[0])
    assert health is not None
    head = health["head"]
    common = assert_no_fork(cluster, idx)
    assert common == head["number"], cluster.describe(idx)

    with load.lock:
        seen = dict(load.receipts)
    hashes = sorted(seen)
    with httpx.Client(timeout=60) as client:
        for i in idx:
            got = batched_results(client, cluster.rpc_url(i), "eth_getTransactionReceipt",
                                  [[h] for h in hashes])
            for h, receipt in zip(hashes, got, strict=True):
                source, expected = seen[h]
                assert receipt == expected, (
                    f"receipt of {h} differs: {cluster.name(source)} returned {expected}, "
                    f"{cluster.name(i)} returns {receipt}")
                assert receipt["status"] == "0x1", receipt
    return dict(head)


# -- a TCP proxy that can drop everything ------------------------------------------------------


class Proxy:
    """Forwards ``127.0.0.1:listen_port`` to ``127.0.0.1:target_port`` byte for byte.

    :meth:`block` closes every forwarded connection and from then on accepts and at once
    closes new ones (a peer sees the handshake cut off); :meth:`unblock` heals.
    """

    def __init__(self, listen_port: int, target_port: int, name: str = "") -> None:
        self.name = name or f"{listen_port}->{target_port}"
        self.target_port = target_port
        self._server = socket.create_server(("127.0.0.1", listen_port))
        self._server.settimeout(0.2)
        self._blocked = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.forwarded = 0  # connections forwarded
        self.refused = 0  # connections closed because blocked
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept_loop,
                                               name=f"proxy-{self.name}", daemon=True)
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._blocked.is_set():
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if self._blocked.is_set() or self._closed.is_set():
                    client.close()
                    upstream.close()
                    continue
                self._sockets.update((client, upstream))
                self.forwarded += 1
            for src, dst in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data or self._blocked.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                for s in (src, dst):
                    if s in self._sockets:
                        self._sockets.discard(s)
                        s.close()

    def block(self) -> None:
        with self._lock:
            self._blocked.set()
            sockets = list(self._sockets)
        for s in sockets:  # wakes the pumps, which close them
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def unblock(self) -> None:
        self._blocked.clear()

    def active(self) -> int:
        with self._lock:
            return len(self._sockets) // 2

    def close(self) -> None:
        self._closed.set()
        self.block()
        self._accept_thread.join(5)
        self._server.close()
        for t in self._threads:
            t.join(5)
