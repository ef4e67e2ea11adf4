"""Deterministic network simulations of the consensus core (see consensus_sim.py).

Checked for every run: agreement, validity, liveness after the network stabilises and the
last crashed validator restarted (every height up to the target decided by every correct
node, within a bounded number of rounds for heights started after that), verifiable
certificates on every Decide, evidence only against Byzantine validators, and no correct
validator ever asked to sign a second, different message for one (height, round, step),
across its crashes too. Every failure message starts with the reproducing scenario (n,
seed, suite, crashes): rerun with ``run(Scenario(...))`` / ``random_scenario``.

Crash-restart (issue 8, finding 2): any set of correct validators, all of them included,
crashes at any point of the run (every effect, and between writing the sign log and
sending), keeping only its decisions and sign log, and restarts with ``Resume``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from consensus_sim import (
    SUITES,
    Crash,
    Scenario,
    SignatureSuite,
    SimResult,
    Simulation,
    random_scenario,
    run,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NS = [4, 7, 10]
FIXED_SEEDS = list(range(10))
TARGET = 4


def check(r: SimResult) -> None:
    sc = r.scenario
    tag = f"reproduce with {sc.describe()}"
    byz_addrs = {r.vset.validators[i].address for i in r.byzantine}
    for h in range(1, sc.target_height + 1):
        decided = {i: r.decisions[i][h] for i in r.honest if h in r.decisions[i]}
        values = {d.value_id for d in decided.values()}
        assert len(values) <= 1, f"{tag}: agreement violated at height {h}: {values}"
        assert not values & r.invalid_values, f"{tag}: invalid value decided at height {h}"
        missing = [i for i in r.honest if i not in decided]
        assert not missing, f"{tag}: nodes {missing} never decided height {h} (t={r.end_time})"
        start = min(r.height_start[i].get(h, 1 << 62) for i in r.honest)
        if start >= r.stabilised_at + sc.gossip_interval_ms:
            worst = max(d.certificate.round for d in decided.values())
            assert worst <= sc.f + 2, f"{tag}: height {h} needed round {worst} after GST"
    assert not r.bad_certificates, f"{tag}: {r.bad_certificates}"
    assert not r.double_signs, f"{tag}: a correct validator was asked to double-sign: " \
        f"{r.double_signs[:3]}"
    for reporter, ev in r.evidence:
        assert ev.vote_a.validator in byz_addrs, (
            f"{tag}: node {reporter} reported a correct validator: {ev}")
        assert ev.vote_a.value_id != ev.vote_b.value_id, tag


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("seed", FIXED_SEEDS)
def test_fixed_seeds(suite: SignatureSuite, n: int, seed: int) -> None:
    check(run(random_scenario(n, seed, suite, target_height=TARGET)))


# The fast lane samples a few random seeds per (suite, n); the slow lane many more.
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                print_blob=True)
THOROUGH = settings(FAST, max_examples=150)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("n", NS)
@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_random_seeds(suite: SignatureSuite, n: int, seed: int) -> None:
    check(run(random_scenario(n, seed, suite, target_height=TARGET)))


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("n", NS)
@THOROUGH
@given(seed=st.integers(0, 2**32 - 1))
def test_random_seeds_thorough(suite: SignatureSuite, n: int, seed: int) -> None:
    check(run(random_scenario(n, seed, suite, target_height=TARGET)))


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize(("n", "kind"), [(n, k) for n in NS
                                         for k in ("equivocate", "silent", "garbage")])
def test_f_byzantine_of_one_kind(suite: SignatureSuite, n: int, kind: str) -> None:
    """Exactly f Byzantine validators all behaving the same way, with drops and a partition
    (majority/minority split that heals at GST)."""
    f = (n - 1) // 3
    for seed in range(3):
        sc = Scenario(n=n, seed=1000 + seed, suite=suite,
                      byzantine=tuple((i, kind) for i in range(seed, seed + f)),
                      target_height=TARGET, gst_ms=4000, drop_prob=0.3,
                      partition=(tuple(range(n // 2)), tuple(range(n // 2, n))))
        check(run(sc))


def test_simulation_is_deterministic() -> None:
    sc = random_scenario(7, 42)
    a, b = run(sc), run(sc)
    assert a.end_time == b.end_time
    assert {i: {h: d.value_id for h, d in ds.items()} for i, ds in a.decisions.items()} == \
        {i: {h: d.value_id for h, d in ds.items()} for i, ds in b.decisions.items()}


def test_garbage_is_dropped_by_the_host() -> None:
    sc = Scenario(n=4, seed=7, byzantine=((2, "garbage"),), target_height=3, gst_ms=0)
    r = run(sc)
    check(r)
    assert r.dropped_bad_sig > 0


# --- crash-restart ---------------------------------------------------------------------------

CRASH_BASE = Scenario(n=4, seed=5, target_height=2, gst_ms=0, drop_prob=0.0, dup_prob=0.0)


def _points(sc: Scenario) -> int:
    sim = Simulation(sc)
    sim.run()
    return sim.points


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_crashes_at_every_point(suite: SignatureSuite) -> None:
    """n = 4, at every point of a two-height run: all four validators crash at once; and
    one validator, and one other set of them, rotating through every set so that each
    set is tried at points all along the run. Each restarts 300 ms later."""
    base = replace(CRASH_BASE, suite=suite)
    total = _points(base)
    assert total > 40  # the run has the effects this test means to cut between
    subsets = [c for k in range(1, 4) for c in itertools.combinations(range(4), k)]
    for at in range(1, total + 1):
        for nodes in ((0, 1, 2, 3), (at % 4,), subsets[at % len(subsets)]):
            r = run(replace(base, crashes=(Crash(at, nodes, down_ms=300),)))
            check(r)
            assert r.restarts == len(nodes), f"{r.scenario.describe()}: {r.restarts}"


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_two_down_two_spinning_then_all_restart(suite: SignatureSuite) -> None:
    """The issue's case: two of four validators are down, the other two sign round-0
    messages and spin without a quorum; then those two crash too (at every point of
    their spinning, or later) and all four restart: the height is decided."""
    base = replace(CRASH_BASE, suite=suite, crashes=(Crash(1, (2, 3), down_ms=8000),))
    total = _points(base)
    cases = [Crash(at, (0, 1), down_ms=8000 - 1) for at in range(2, total + 1)]
    cases.append(Crash(0, (0, 1, 2, 3), down_ms=2000, at_ms=6000))  # long after spinning
    for second in cases:
        r = run(replace(base, crashes=(*base.crashes, second)))
        check(r)
        assert all(1 in r.decisions[i] for i in range(4)), r.scenario.describe()


_crashes = st.lists(st.builds(Crash, st.integers(1, 400),
                              st.lists(st.integers(0, 9), min_size=1, max_size=10,
                                       unique=True).map(tuple),
                              st.integers(0, 3000)), min_size=1, max_size=3)


def _random_crashes(suite: SignatureSuite, n: int, seed: int, crashes: list[Crash]) -> None:
    sc = random_scenario(n, seed, suite, target_height=3)
    fixed = tuple(Crash(c.at_point, tuple(i for i in c.nodes if i < n), c.down_ms)
                  for c in crashes)
    check(run(replace(sc, crashes=fixed)))


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@settings(FAST, max_examples=25)
@given(n=st.sampled_from([4, 7]), seed=st.integers(0, 2**32 - 1), crashes=_crashes)
def test_random_crashes(suite: SignatureSuite, n: int, seed: int,
                        crashes: list[Crash]) -> None:
    """Random scenarios (drops, partitions, f Byzantine) with up to three crash events of
    random sets of the correct validators at random points."""
    _random_crashes(suite, n, seed, crashes)


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@settings(THOROUGH, max_examples=300)
@given(n=st.sampled_from([4, 7, 10]), seed=st.integers(0, 2**32 - 1), crashes=_crashes)
def test_random_crashes_thorough(suite: SignatureSuite, n: int, seed: int,
                                 crashes: list[Crash]) -> None:
    _random_crashes(suite, n, seed, crashes)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("seed", range(6))
def test_fixed_seed_crashes(suite: SignatureSuite, seed: int) -> None:
    sc = random_scenario(7, 500 + seed, suite, target_height=3)
    crashes = (Crash(10 + 17 * seed, (0, 1, 2, 3, 4, 5, 6), 700),
               Crash(60 + 11 * seed, (seed % 7, (seed + 3) % 7), 1500))
    check(run(replace(sc, crashes=crashes)))
