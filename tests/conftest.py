"""Shared fixtures (real node processes on 127.0.0.1, always stopped afterwards) and the two
test lanes: CI runs every test at full strength; the fast lane (`-m "not slow"`) starts no
process, leaves out the heavy whole-build checks and runs a tenth of each property test's
hypothesis examples."""

from __future__ import annotations

import _posixsubprocess
import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import is_hypothesis_test, settings

from yilian.cli import launcher
from yilian.cli.launcher import free_port


class LocalNetwork:
    """A local network started with the real CLI machinery (``yilian up``) in a temp dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.info: dict[str, Any] = launcher.up(data_dir, nodes=1, base_port=free_port())

    @property
    def rpc(self) -> str:
        return str(self.info["nodes"][0]["rpc"])

    @property
    def ws(self) -> str:
        return str(self.info["nodes"][0]["ws"])

    @property
    def pid(self) -> int:
        return int(json.loads((self.data_dir / "network.json").read_text())["nodes"][0]["pid"])

    @property
    def home(self) -> Path:
        return Path(self.info["nodes"][0]["home"])

    def key(self, i: int = 0) -> str:
        return str(self.info["accounts"][i]["privateKey"])

    def address(self, i: int = 0) -> str:
        return str(self.info["accounts"][i]["address"])

    def restart(self) -> None:
        """``yilian up`` again: restarts stopped nodes, keeps their data."""
        self.info = launcher.up(self.data_dir)

    def stop(self) -> None:
        launcher.down(self.data_dir)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """One single-validator network per test module."""
    net = LocalNetwork(tmp_path_factory.mktemp("net"))
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture
def fresh_network(tmp_path: Path) -> Iterator[LocalNetwork]:
    """A network of its own, for tests that kill or restart the node."""
    net = LocalNetwork(tmp_path / "net")
    try:
        yield net
    finally:
        net.stop()


# -- the fast lane --------------------------------------------------------------------------
# The fast lane (`pytest -m "not slow"`, see README) starts no process; CI runs everything.
# Every test that starts a process (a node, a consortium, `python -c`, multiprocessing) is
# marked `slow` here, in one place: by the fixtures that start a network, by the modules whose
# tests start nodes themselves, and by name for single tests. The guard below enforces it: a
# test not marked `slow` that starts a process fails and says where to mark it.
_PROCESS_FIXTURES = frozenset({"network", "fresh_network"})
_PROCESS_MODULES = frozenset({
    "test_admission_e2e", "test_block_interval", "test_consortium", "test_crash_recovery",
    "test_launcher_port_clash", "test_other_client", "test_peer_count", "test_records_e2e",
    "test_records_sm", "test_restart_liveness", "test_stall_e2e", "test_web3_e2e",
})
_PROCESS_TESTS = frozenset({
    "test_bench.py::test_bench_end_to_end_on_its_own_network",
    "test_bench.py::test_consortium_bench_1_and_4_validators",
    "test_bench.py::test_records_benchmark_runs_end_to_end",
    "test_bench.py::test_soak_bench_runs_on_4_validators",
    "test_contracts.py::test_loader_does_not_need_vyper",
    "test_rpc_bad_input.py::test_deeply_nested_json_does_not_kill_the_node",
})


# Heavy checks of the whole build, also run by CI only (the fast lane leaves them out): every
# contract compiled with vyper, and thousands of native crypto calls watched for a leak.
_HEAVY_TESTS = frozenset({
    "test_contracts.py::test_committed_artifacts_are_fresh",
    "test_crypto_sm.py::test_no_native_leak",
})


def _test_name(item: pytest.Item) -> str:
    module = item.module.__name__.rpartition(".")[2] if isinstance(item, pytest.Function) else ""
    return f"{module}.py::{getattr(item, 'originalname', item.name)}"


def _starts_processes(item: pytest.Item) -> bool:
    module = _test_name(item).partition(".py::")[0]
    return bool(_PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                or module in _PROCESS_MODULES or _test_name(item) in _PROCESS_TESTS)


# -- property tests: the fast lane runs a tenth of the examples -----------------------------
# CI (no -m) runs every property test with the example count written at the test. A run that
# deselects slow tests (`-m "not slow"`, the fast lane) loads the hypothesis profile `fast`:
# each property test runs a tenth of its examples, at least 10 (all of them when it has
# fewer). `--hypothesis-profile=default` keeps the full counts there too.
settings.register_profile("fast", max_examples=10)


def _fast_lane_examples(count: int) -> int:
    return max(min(count, 10), count // 10)


def pytest_configure(config: pytest.Config) -> None:
    markexpr = " ".join(str(config.getoption("-m") or "").split())
    if config.getoption("--hypothesis-profile") is None and "not slow" in markexpr:
        settings.load_profile("fast")


def _use_fast_lane_examples(items: list[pytest.Item]) -> None:
    """Give every property test of ``items`` its fast-lane example count, once per test.

    A stateful test's settings are its TestCase's ``settings``; ``@given`` keeps a test's
    settings on the test function, where hypothesis reads them when the test runs."""
    done: set[int] = set()
    for item in items:
        cls, test = getattr(item, "cls", None), getattr(item, "obj", None)
        test = getattr(test, "__func__", test)
        if isinstance(getattr(cls, "settings", None), settings):
            owner, name = cls, "settings"
        elif is_hypothesis_test(test):
            owner, name = test, "_hypothesis_internal_use_settings"
        else:
            continue
        if id(owner) not in done:
            done.add(id(owner))
            full = getattr(owner, name)
            fast = settings(full, max_examples=_fast_lane_examples(full.max_examples))
            setattr(owner, name, fast)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _starts_processes(item) or _test_name(item) in _HEAVY_TESTS:
            item.add_marker(pytest.mark.slow)
    if settings.get_current_profile_name() == "fast":
        _use_fast_lane_examples(items)


class ProcessStartedError(AssertionError):
    """A test not marked `slow` started a process."""


def _refuse(item: pytest.Item, real: Callable[..., Any]) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ProcessStartedError(
            f"{item.nodeid} starts a process but is not marked slow: the fast lane runs no "
            "process. Name the test (or its fixture or module) in tests/conftest.py's "
            "_PROCESS_TESTS (_PROCESS_FIXTURES, _PROCESS_MODULES).")
    refuse.__wrapped__ = real  # type: ignore[attr-defined]
    return refuse


# Every way to start a process ends in one of these: subprocess (and asyncio's subprocesses)
# in its own _fork_exec or os.posix_spawn, multiprocessing's spawn/forkserver in
# _posixsubprocess.fork_exec, multiprocessing's fork and pty in os.fork / os.forkpty, and
# os.system in C.
_PROCESS_STARTERS = ((os, "fork"), (os, "forkpty"), (os, "posix_spawn"), (os, "posix_spawnp"),
                     (os, "system"), (_posixsubprocess, "fork_exec"), (subprocess, "_fork_exec"))


@contextlib.contextmanager
def _no_processes(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("slow"):
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        for owner, name in _PROCESS_STARTERS:
            real = getattr(owner, name, None)
            if real is not None:
                mp.setattr(owner, name, _refuse(item, real))
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _no_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _no_processes(item):
        return (yield)
