"""Deterministic network simulations of the consensus core (see consensus_sim.py).

Checked for every run: agreement, validity, liveness after the network stabilises (every
height up to the target decided by every correct node, within a bounded number of rounds
for heights started after GST), verifiable certificates on every Decide, and evidence only
against Byzantine validators. Every failure message starts with the reproducing scenario
(n, seed, suite): rerun with ``run(random_scenario(n, seed, suite))``.
"""

from __future__ import annotations

import pytest
from consensus_sim import SUITES, Scenario, SignatureSuite, SimResult, random_scenario, run
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
    for reporter, ev in r.evidence:
        assert ev.vote_a.validator in byz_addrs, (
            f"{tag}: node {reporter} reported a correct validator: {ev}")
        assert ev.vote_a.value_id != ev.vote_b.value_id, tag


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("seed", FIXED_SEEDS)
def test_fixed_seeds(suite: SignatureSuite, n: int, seed: int) -> None:
    check(run(random_scenario(n, seed, suite, target_height=TARGET)))


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("n", NS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          print_blob=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_seeds(suite: SignatureSuite, n: int, seed: int) -> None:
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
