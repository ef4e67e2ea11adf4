"""Nodes on one machine spread over the CPUs round-robin by their launch slot."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.cli import launcher
from yilian.cli.runner import CPU_SLOT_ENV, cpu_for, cpu_slot


@given(st.integers(1, 8), st.lists(st.integers(0, 63), min_size=1, max_size=8, unique=True))
def test_slots_fill_every_cpu_before_any_gets_a_second_node(nodes: int, cpus: list[int]
                                                             ) -> None:
    cpus = sorted(cpus)
    chosen = [cpu_for(f"center-{i}", i, cpus) for i in range(nodes)]
    counts = [chosen.count(c) for c in cpus]
    assert max(counts) - min(counts) <= 1  # a hash put 5 of 7 nodes on one CPU of two
    assert all(c in cpus for c in chosen)


def test_without_a_slot_the_name_decides_stably() -> None:
    cpus = [0, 1, 2, 3]
    assert cpu_for("center-1", None, cpus) == cpu_for("center-1", None, cpus)
    assert len({cpu_for(f"n{i}", None, cpus) for i in range(40)}) > 1


@pytest.mark.parametrize("value,slot", [(None, None), ("", None), ("0", 0), (" 7 ", 7)])
def test_slot_env_parses(value: str | None, slot: int | None) -> None:
    assert cpu_slot(value) == slot


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_a_bad_slot_env_says_what_to_give(value: str) -> None:
    with pytest.raises(ValueError, match=f"{CPU_SLOT_ENV}=.*index in its network"):
        cpu_slot(value)


def test_up_gives_each_node_its_index_and_spawn_passes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    class FakePopen:
        pid = 4242

        def __init__(self, cmd: list[str], **kw: Any) -> None:
            seen.append(kw["env"] or {})

    monkeypatch.setattr(launcher.subprocess, "Popen", FakePopen)
    entry = {"log": str(tmp_path / "n.log"), "home": str(tmp_path), "slot": 2}
    launcher.spawn(entry, env={"A": "1"})
    launcher.spawn({**entry, "slot": 0})
    launcher.spawn(entry, env={CPU_SLOT_ENV: "5"})  # an explicit env wins
    assert [e.get(CPU_SLOT_ENV) for e in seen] == ["2", "0", "5"]
    assert seen[0]["A"] == "1" and seen[0]["PATH"] == os.environ["PATH"]

    slots: list[int] = []
    monkeypatch.setattr(launcher, "_wait_healthy", lambda entries, timeout: None)
    network = launcher.up(tmp_path / "net", nodes=4, base_port=launcher.free_port_range(8),
                          spawner=lambda e: slots.append(e["slot"]) or 1)
    assert slots == [0, 1, 2, 3]
    stored = json.loads((tmp_path / "net" / launcher.NETWORK_FILE).read_text())
    assert [n["slot"] for n in stored["nodes"]] == [0, 1, 2, 3] == [
        n["slot"] for n in network["nodes"]]
