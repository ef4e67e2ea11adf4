"""Start, stop and inspect a local network of node processes (``yilian up/down/status``).

``DIR/network.json`` is the source of truth for a local network: each node's home, RPC
and WebSocket URLs and process id, and the development accounts. ``up`` on an existing
DIR restarts the nodes that are not running and keeps their data.

``up`` waits until each node it started answers ``/healthz`` *as itself*: before a start it
writes a fresh random id to the node's home (:data:`START_ID_FILE`), the node reports that
id and its pid in ``/healthz``, and an answer with another id or pid (another network's
node, or any other server on the port) fails ``up`` with a port-clash message.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from yilian.network_configs.local import dev_accounts, local_genesis

NETWORK_FILE = "network.json"
START_ID_FILE = "start_id"  # in a node's home: the id of its latest start by ``up``


class LauncherError(Exception):
    """A local network cannot be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class NodeStatus:
    name: str
    pid: int | None
    running: bool
    head: int | None
    rpc_url: str


def free_port() -> int:
    """Any free TCP port on 127.0.0.1 (the kernel picks one from its ephemeral range)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_near(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else the first free port of the next 199."""
    for port in [preferred, *range(preferred + 1, preferred + 200)]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise LauncherError(f"no free TCP port near {preferred}; pass --base-port")


def free_port_range(count: int, attempts: int = 200) -> int:
    """A base port such that ``base .. base + count - 1`` are all free on 127.0.0.1.

    Chosen below the kernel's ephemeral range (32768+) so the nodes' own outgoing
    connections cannot take one of them between this check and the bind.
    """
    for _ in range(attempts):
        base = random.randrange(20_000, 32_000 - count)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise LauncherError(f"found no {count} consecutive free TCP ports")


def _alive(pid: int | None, home: str) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # the pid may have been reused by an unrelated process
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True
    if not cmdline:
        # Empty: a zombie, or a process still inside execve - such as the node ``up`` has
        # just spawned (subprocess returns once the vforked child has started execve).
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    return home in cmdline and "yilian" in cmdline


def _health(rpc_url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    base = rpc_url.rsplit("/rpc", 1)[0]
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=timeout) as resp:
            data = json.loads(resp.read())
            return data if isinstance(data, dict) else {}  # {}: something, not a node
    except (OSError, ValueError):
        return None


def read_network(data_dir: Path) -> dict[str, Any]:
    path = data_dir / NETWORK_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise LauncherError(f"no network in {data_dir} (missing {NETWORK_FILE}); start one "
                            f"with `yilian up --data-dir {data_dir}`") from exc
    return data


def _write_network(data_dir: Path, network: dict[str, Any]) -> None:
    tmp = data_dir / (NETWORK_FILE + ".tmp")
    tmp.write_text(json.dumps(network, indent=2) + "\n")
    os.replace(tmp, data_dir / NETWORK_FILE)


def init_local(data_dir: Path, nodes: int, base_port: int) -> dict[str, Any]:
    """Create the homes, genesis and configs of a local network in ``data_dir``.

    One node: a single validator producing its own blocks. More: a BFT consortium of that
    many centers (``yilian network init``), each with its own key.
    """
    if nodes < 1:
        raise LauncherError("--nodes must be at least 1")
    if nodes > 1:
        from yilian.network_configs.generate import NetworkInitError, init_network

        first = free_port_near(base_port)
        for port in range(first, first + 2 * nodes):
            if free_port_near(port) != port:
                raise LauncherError(f"port {port} is in use; pass a different --base-port")
        try:
            return init_network(data_dir, centers=nodes, base_port=first)
        except NetworkInitError as exc:
            raise LauncherError(str(exc)) from exc
    from yilian.network_configs.generate import (
        ACCOUNT_KEY_FILE,
        ENC_KEY_FILE,
        add_members,
        make_center,
        network_description,
        node_entry,
    )

    data_dir.mkdir(parents=True, exist_ok=True)
    accounts = dev_accounts()
    name = "node-1"
    home = (data_dir / name).resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = free_port_near(base_port)
    center = make_center(home, 1, name, f"http://127.0.0.1:{port}", "standard")
    genesis = local_genesis(accounts)
    members = add_members(genesis, "standard", [center], accounts)
    (home / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")
    config = {"name": name, "host": "127.0.0.1", "rpc_port": port,
              "genesis_file": "genesis.json", "data_dir": "data",
              "proposer": accounts[0].address, "account_key_file": ACCOUNT_KEY_FILE,
              "enc_key_file": ENC_KEY_FILE}
    (home / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    network = network_description(
        genesis, "standard", [node_entry(name, center, "127.0.0.1", port, home)], members,
        accounts)
    _write_network(data_dir, network)
    return network


class Spawner(Protocol):
    """Starts the node process of a ``network.json`` entry in the background; returns its pid.

    The process must run ``node_command(entry)`` (``_alive`` recognises a node by its home
    in the command line) with its output appended to ``entry["log"]``.
    """

    def __call__(self, entry: dict[str, Any]) -> int: ...


def node_command(entry: dict[str, Any]) -> list[str]:
    """The command line of the node process for ``entry``."""
    return [sys.executable, "-m", "yilian.cli.main", "node", "run", "--home", entry["home"]]


def spawn(entry: dict[str, Any], env: Mapping[str, str] | None = None) -> int:
    """The default :class:`Spawner`: a detached process in its own session, with this
    process's environment plus ``env``, and ``YILIAN_NODE_CPU_SLOT`` set to the node's
    index in the network (``entry["slot"]``, set by :func:`up`) so nodes spread over the
    CPUs round-robin (``yilian.cli.runner.cpu_for``)."""
    extra = dict(env or {})
    if "slot" in entry:
        extra.setdefault("YILIAN_NODE_CPU_SLOT", str(entry["slot"]))
    log = open(entry["log"], "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        node_command(entry),
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
        env={**os.environ, **extra} if extra else None,
    )
    log.close()
    return proc.pid


def up(data_dir: Path, nodes: int = 1, base_port: int = 8545,
       timeout: float = 60.0, spawner: Spawner = spawn) -> dict[str, Any]:
    """Start (or restart the stopped nodes of) the local network in ``data_dir``.

    ``spawner`` starts each node process (tests pass one that keeps the ``Popen``).
    """
    data_dir = data_dir.resolve()
    if (data_dir / NETWORK_FILE).exists():
        network = read_network(data_dir)
    else:
        network = init_local(data_dir, nodes, base_port)
    started = []
    for slot, entry in enumerate(network["nodes"]):
        entry["slot"] = slot
        if _alive(entry.get("pid"), entry["home"]):
            continue
        (Path(entry["home"]) / START_ID_FILE).write_text(secrets.token_hex(16) + "\n")
        entry["pid"] = spawner(entry)
        started.append(entry)
    _write_network(data_dir, network)
    try:
        _wait_healthy(started, timeout)
    except LauncherError:
        down(data_dir)  # leave nothing half-started behind
        raise
    return network


def _start_id(entry: dict[str, Any]) -> str | None:
    path = Path(entry["home"]) / START_ID_FILE
    return path.read_text().strip() if path.exists() else None


def _wait_healthy(entries: list[dict[str, Any]], timeout: float) -> None:
    """Wait until each started node answers ``/healthz`` with its own pid and start id."""
    deadline = time.monotonic() + timeout
    for entry in entries:
        start_id = _start_id(entry)
        while True:
            health = _health(entry["rpc"])
            if health is not None:
                if health.get("pid") == entry["pid"] and health.get("startId") == start_id:
                    break
                raise LauncherError(_port_clash(entry, health))
            if not _alive(entry["pid"], entry["home"]):
                tail = Path(entry["log"]).read_text(errors="replace")[-2000:]
                raise LauncherError(f"{entry['name']} exited during start-up; its log "
                                    f"({entry['log']}) ends with:\n{tail}")
            if time.monotonic() > deadline:
                raise LauncherError(f"{entry['name']} did not answer on {entry['rpc']} within "
                                    f"{timeout:.0f}s; see {entry['log']}")
            time.sleep(0.1)


def _port_clash(entry: dict[str, Any], health: dict[str, Any]) -> str:
    port = urllib.parse.urlsplit(entry["rpc"]).port
    who = ", ".join(f"{k} {health[k]!r}" for k in ("name", "chainId", "pid") if k in health)
    who = who or "not a yilian node"
    return (f"port clash: port {port} is answered by another process ({who}), not by "
            f"{entry['name']} just started (pid {entry['pid']}), so "
            f"{entry['name']} cannot listen there. Stop the process on port {port} (e.g. "
            f"`yilian down --data-dir` of the network it belongs to), or start this network "
            f"on free ports: a new --data-dir with a different --base-port.")


def down(data_dir: Path, timeout: float = 20.0) -> list[str]:
    """Stop every node of the network cleanly (SIGTERM, then SIGKILL after ``timeout``)."""
    data_dir = data_dir.resolve()
    network = read_network(data_dir)
    stopped = []
    for entry in network["nodes"]:
        pid = entry.get("pid")
        if _alive(pid, entry["home"]):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid, entry["home"]) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid, entry["home"]):
                os.kill(pid, signal.SIGKILL)
            stopped.append(entry["name"])
        entry["pid"] = None
    _write_network(data_dir, network)
    return stopped


def status(data_dir: Path) -> list[NodeStatus]:
    network = read_network(data_dir.resolve())
    out = []
    for entry in network["nodes"]:
        running = _alive(entry.get("pid"), entry["home"])
        health = _health(entry["rpc"]) if running else None
        out.append(NodeStatus(entry["name"], entry.get("pid"), running,
                              health["head"]["number"] if health else None, entry["rpc"]))
    return out
