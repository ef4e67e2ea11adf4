"""The two test lanes of tests/conftest.py, run on a small suite in process (pytester).

CI runs every test, each property test with the example count written at it; the fast lane
(`-m "not slow"`) leaves out the tests marked slow and runs a tenth of each property test's
examples (at least 10), for ``@given`` tests and stateful machines alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["pytester"]

SUITE = '''
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

RUNS = {"given": 0, "few": 0, "machine": 0}


@settings(max_examples=200, database=None)
@given(st.integers())
def test_given(n):
    RUNS["given"] += 1


@pytest.mark.parametrize("p", [1, 2])
@settings(max_examples=8, database=None)
@given(st.integers())
def test_few(p, n):
    RUNS["few"] += 1


class Machine(RuleBasedStateMachine):
    @rule()
    def step(self):
        pass

    def teardown(self):
        RUNS["machine"] += 1


Machine.TestCase.settings = settings(max_examples=150, stateful_step_count=1, database=None)
test_machine = Machine.TestCase


@pytest.mark.slow
def test_slow():
    pass


def test_zz_report():
    print("RUNS", RUNS["given"], RUNS["few"], RUNS["machine"])
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Iterator[pytest.Pytester]:
    """The suite under this repository's conftest, started as a fresh process would be (with
    hypothesis' default profile); this session's profile is put back after."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makeini('[pytest]\nmarkers =\n    slow: slow\n')
    pytester.makepyfile(test_suite=SUITE)
    profile = settings.get_current_profile_name()
    settings.load_profile("default")
    try:
        yield pytester
    finally:
        settings.load_profile(profile)


def runs(result: pytest.RunResult) -> tuple[int, ...]:
    """How often the suite's property tests ran: (given, few, machine)."""
    [found] = re.findall(r"RUNS (\d+) (\d+) (\d+)", result.stdout.str())
    return tuple(int(n) for n in found)


def test_ci_runs_every_test_with_its_full_example_count(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    assert runs(result) == (200, 2 * 8, 150)


def test_the_fast_lane_runs_a_tenth_of_the_examples_and_no_slow_test(
        suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess("-s", "-p", "no:cacheprovider", "-m", "not slow")
    result.assert_outcomes(passed=5, deselected=1)
    assert runs(result) == (20, 2 * 8, 15)  # a tenth, but never fewer than 10


def test_the_fast_lane_keeps_full_counts_when_asked(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess("-s", "-p", "no:cacheprovider", "-m", "not slow",
                                       "--hypothesis-profile=default")
    result.assert_outcomes(passed=5, deselected=1)
    assert runs(result) == (200, 2 * 8, 150)
