"""Focused tests of the rules of Algorithm 1 in yilian.consensus.machine, plus a property
test that ``step`` is total and never double-signs."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.consensus import (
    CommitCertificate,
    CommitReceived,
    ConsensusConfig,
    ConsensusState,
    Decide,
    Effect,
    Evidence,
    Input,
    InvalidConfig,
    NewHeight,
    Proposal,
    ProposalReceived,
    RequestValue,
    Resume,
    RoundStep,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutConfig,
    TimeoutFired,
    TimeoutKind,
    Validator,
    ValidatorSet,
    ValueToPropose,
    Vote,
    VoteReceived,
    VoteType,
    initial_state,
    proposer,
    step,
    timeout_duration,
    verify_certificate,
)

VSET = ValidatorSet(tuple(Validator(bytes([i + 1]) * 20, bytes([i + 1]) * 32, 1)
                          for i in range(4)))
ADDRS = [v.address for v in VSET.validators]
V = b"\x0a" * 32
W = b"\x0b" * 32
CFG_T = TimeoutConfig(propose_ms=100, propose_delta_ms=10, prevote_ms=50, prevote_delta_ms=5,
                      precommit_ms=50, precommit_delta_ms=5, max_ms=1000)


def prop_addr(r: int, h: int = 1) -> bytes:
    return proposer(VSET, h, r)


# a validator that does not propose in rounds 0..2 of height 1
ME = next(a for a in ADDRS if a not in {prop_addr(0), prop_addr(1), prop_addr(2)})
OTHERS = [a for a in ADDRS if a != ME]


def start(address: bytes | None = ME, height: int = 1) -> tuple[ConsensusState, list[Effect]]:
    s = initial_state(ConsensusConfig(address=address, timeouts=CFG_T))
    return feed(s, NewHeight(height, VSET))


def feed(s: ConsensusState, *inputs: Input) -> tuple[ConsensusState, list[Effect]]:
    out: list[Effect] = []
    for i in inputs:
        s, effs = step(s, i)
        out.extend(effs)
    return s, out


def vote(t: VoteType, r: int, v: bytes | None, who: bytes, h: int = 1) -> VoteReceived:
    return VoteReceived(Vote(t, h, r, v, who, b"sig"))


def prevotes(r: int, v: bytes | None, who: Iterable[bytes], h: int = 1) -> list[VoteReceived]:
    return [vote(VoteType.PREVOTE, r, v, a, h) for a in who]


def precommits(r: int, v: bytes | None, who: Iterable[bytes], h: int = 1) -> list[VoteReceived]:
    return [vote(VoteType.PRECOMMIT, r, v, a, h) for a in who]


def proposal(r: int, v: bytes, vr: int = -1, valid: bool = True, h: int = 1,
             by: bytes | None = None) -> ProposalReceived:
    return ProposalReceived(Proposal(h, r, v, vr, by or prop_addr(r, h), b"sig"), valid)


def signs(effects: list[Effect]) -> list[SignVote]:
    return [e for e in effects if isinstance(e, SignVote)]


def to_round(s: ConsensusState, r: int) -> tuple[ConsensusState, list[Effect]]:
    """Move a node at round r-1 to round r through nil precommits and timeoutPrecommit."""
    s, eff = feed(s, *precommits(s.round, None, OTHERS))
    assert ScheduleTimeout(TimeoutKind.PRECOMMIT, 1, s.round,
                           timeout_duration(CFG_T, TimeoutKind.PRECOMMIT, s.round)) in eff
    s, eff2 = feed(s, TimeoutFired(TimeoutKind.PRECOMMIT, 1, s.round))
    assert s.round == r and s.step == RoundStep.PROPOSE
    return s, eff + eff2


def test_start_schedules_propose_timeout() -> None:
    s, eff = start()
    assert (s.height, s.round, s.step) == (1, 0, RoundStep.PROPOSE)
    assert eff == [ScheduleTimeout(TimeoutKind.PROPOSE, 1, 0, 100)]


def test_prevote_valid_proposal_else_nil() -> None:  # lines 22-27
    s, _ = start()
    s1, eff = feed(s, proposal(0, V))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 0, V)]
    assert s1.step == RoundStep.PREVOTE
    _, eff = feed(s, proposal(0, V, valid=False))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 0, None)]


def test_proposal_from_non_proposer_ignored() -> None:
    s, _ = start()
    s1, eff = feed(s, proposal(0, V, by=ME))
    assert eff == [] and s1 == s


def test_lock_on_prevote_quorum() -> None:  # lines 36-43
    s, _ = start()
    s, eff = feed(s, proposal(0, V), *prevotes(0, V, OTHERS))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 0, V),
                          SignVote(VoteType.PRECOMMIT, 1, 0, V)]
    assert (s.locked_value, s.locked_round, s.valid_value, s.valid_round) == (V, 0, V, 0)
    assert s.step == RoundStep.PRECOMMIT


def test_valid_value_updated_without_lock_after_precommit_step() -> None:
    s, _ = start()
    # prevote timeout path: nil prevote, nil precommit, then the quorum for V shows up
    s, _ = feed(s, TimeoutFired(TimeoutKind.PROPOSE, 1, 0), *prevotes(0, W, OTHERS[:1]),
                *prevotes(0, None, OTHERS[1:2]))
    s, eff = feed(s, TimeoutFired(TimeoutKind.PREVOTE, 1, 0))
    assert signs(eff) == [SignVote(VoteType.PRECOMMIT, 1, 0, None)]
    s, eff = feed(s, proposal(0, V), *prevotes(0, V, OTHERS))
    assert (s.locked_round, s.valid_value, s.valid_round) == (-1, V, 0)
    assert signs(eff) == []


def test_locked_node_prevotes_nil_for_other_value() -> None:  # line 23 lockedRound check
    s, _ = start()
    s, _ = feed(s, proposal(0, V), *prevotes(0, V, OTHERS))
    s, _ = to_round(s, 1)
    s, eff = feed(s, proposal(1, W))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 1, None)]
    # ... but prevotes its locked value again
    s2, _ = start()
    s2, _ = feed(s2, proposal(0, V), *prevotes(0, V, OTHERS))
    s2, _ = to_round(s2, 1)
    _, eff = feed(s2, proposal(1, V))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 1, V)]


def test_unlock_on_valid_round_proposal() -> None:  # lines 28-33
    s, _ = start()
    s, _ = feed(s, proposal(0, V), *prevotes(0, V, OTHERS))  # locked V in round 0
    s, _ = to_round(s, 1)
    s, _ = feed(s, *prevotes(1, W, OTHERS))  # others saw a quorum for W in round 1
    s, _ = to_round(s, 2)
    assert s.locked_round == 0
    # proposal W with vr = 1 > lockedRound = 0 and 2f+1 prevotes for W in round 1
    s, eff = feed(s, proposal(2, W, vr=1))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 2, W)]


def test_valid_round_proposal_needs_quorum_and_recent_round() -> None:
    s, _ = start()
    s, _ = feed(s, proposal(0, V), *prevotes(0, V, OTHERS))  # locked V in round 0
    s, _ = to_round(s, 1)
    # only 2 prevotes for W in round 1: rule 28 not enabled, no vote until timeout
    s1, _ = feed(s, *prevotes(1, W, OTHERS[:2]))
    s1, _ = to_round(s1, 2)
    _, eff = feed(s1, proposal(2, W, vr=1))
    assert signs(eff) == []
    # locked in round 1 on V; a proposal for W justified by round 0 (vr < lockedRound)
    t, _ = start()
    t, _ = feed(t, *prevotes(0, W, OTHERS))
    t, _ = to_round(t, 1)
    t, _ = feed(t, proposal(1, V), *prevotes(1, V, OTHERS))
    assert (t.locked_value, t.locked_round) == (V, 1)
    t, _ = to_round(t, 2)
    _, eff = feed(t, proposal(2, W, vr=0))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 2, None)]


def test_timeouts_lead_to_nil_votes() -> None:  # lines 34-35, 57-64
    s, _ = start()
    s, eff = feed(s, TimeoutFired(TimeoutKind.PROPOSE, 1, 0))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 0, None)]
    s, eff = feed(s, *prevotes(0, V, OTHERS[:1]), *prevotes(0, W, OTHERS[1:2]),
                  *prevotes(0, None, [ME]))
    assert eff == [ScheduleTimeout(TimeoutKind.PREVOTE, 1, 0, 50)]
    s, eff = feed(s, *prevotes(0, V, OTHERS[2:]))  # "for the first time": no second one
    assert eff == []
    s, eff = feed(s, TimeoutFired(TimeoutKind.PREVOTE, 1, 0))
    assert signs(eff) == [SignVote(VoteType.PRECOMMIT, 1, 0, None)]
    # stale or repeated timeouts do nothing
    for t in (TimeoutFired(TimeoutKind.PREVOTE, 1, 0), TimeoutFired(TimeoutKind.PROPOSE, 1, 0),
              TimeoutFired(TimeoutKind.PRECOMMIT, 2, 0)):
        assert feed(s, t) == (s, [])


def test_nil_prevote_quorum_precommits_nil() -> None:  # lines 44-46
    s, _ = start()
    s, _ = feed(s, TimeoutFired(TimeoutKind.PROPOSE, 1, 0))
    s, eff = feed(s, *prevotes(0, None, OTHERS))
    assert SignVote(VoteType.PRECOMMIT, 1, 0, None) in eff
    assert s.step == RoundStep.PRECOMMIT


def test_precommit_quorum_any_schedules_timeout_then_next_round() -> None:  # 47-48, 65-67
    s, _ = start()
    s, eff = feed(s, *precommits(0, V, OTHERS[:2]), *precommits(0, None, OTHERS[2:]))
    assert ScheduleTimeout(TimeoutKind.PRECOMMIT, 1, 0, 50) in eff
    s, eff = feed(s, TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
    assert s.round == 1 and ScheduleTimeout(TimeoutKind.PROPOSE, 1, 1, 110) in eff


def test_round_skip_on_f_plus_one() -> None:  # lines 55-56
    s, _ = start()
    s1, eff = feed(s, *prevotes(5, None, OTHERS[:1]))
    assert s1.round == 0 and eff == []
    s2, eff = feed(s1, *precommits(5, W, OTHERS[1:2]))
    assert s2.round == 5 and s2.step == RoundStep.PROPOSE
    assert ScheduleTimeout(TimeoutKind.PROPOSE, 1, 5, 150) in eff
    # a proposal of the proposer counts as a message of that round
    other = next(a for a in OTHERS if a != prop_addr(7))
    s3, _ = feed(s, proposal(7, W))
    assert s3.round == 0
    s3, _ = feed(s3, *prevotes(7, None, [other]))
    assert s3.round == 7


def test_decide_with_certificate() -> None:  # lines 49-54
    s, _ = start()
    s, eff = feed(s, proposal(0, V), *precommits(0, V, OTHERS))
    decides = [e for e in eff if isinstance(e, Decide)]
    assert len(decides) == 1 and decides[0].value_id == V and decides[0].height == 1
    cert = decides[0].certificate
    assert verify_certificate(cert, VSET, "c", lambda *_: True)
    assert s.step == RoundStep.COMMIT and s.decision == cert
    # nothing more happens in this height
    assert feed(s, *prevotes(3, None, OTHERS)) == (s, [])


def test_decide_in_older_round_and_not_on_invalid_value() -> None:
    s, _ = start()
    s, _ = to_round(s, 1)
    s, _ = to_round(s, 2)
    s, eff = feed(s, proposal(0, V), *precommits(0, V, OTHERS))
    # round 0 precommits were nil from OTHERS already (first vote counts for "any");
    # the conflicting V precommits count for V: decision in round 0
    assert [e.value_id for e in eff if isinstance(e, Decide)] == [V]
    assert sum(isinstance(e, Evidence) for e in eff) == 3
    t, _ = start()
    t, eff = feed(t, proposal(0, W, valid=False), *precommits(0, W, OTHERS))
    assert not any(isinstance(e, Decide) for e in eff)


def test_duplicates_and_non_validators_ignored() -> None:
    s, _ = start()
    s, _ = feed(s, proposal(0, V))
    outsider = b"\xee" * 20
    s, eff = feed(s, *prevotes(0, V, [OTHERS[0], OTHERS[0], OTHERS[0], outsider, outsider]))
    assert eff == [] and s.book.tally[(0, VoteType.PREVOTE, V)] == 1
    assert s.step == RoundStep.PREVOTE and s.locked_round == -1


def test_equivocation_reported_once_and_counted_per_value() -> None:
    s, _ = start()
    x = OTHERS[0]
    s, eff = feed(s, vote(VoteType.PREVOTE, 0, V, x), vote(VoteType.PREVOTE, 0, W, x),
                  vote(VoteType.PREVOTE, 0, None, x), vote(VoteType.PREVOTE, 0, W, x))
    ev = [e for e in eff if isinstance(e, Evidence)]
    assert len(ev) == 1
    assert (ev[0].evidence.vote_a.value_id, ev[0].evidence.vote_b.value_id) == (V, W)
    assert s.book.type_power[(0, VoteType.PREVOTE)] == 1  # one validator, counted once for "any"
    assert s.book.tally[(0, VoteType.PREVOTE, W)] == 1


def test_conflicting_votes_bounded() -> None:
    s = initial_state(ConsensusConfig(address=ME, max_conflicting_votes=1))
    s, _ = feed(s, NewHeight(1, VSET))
    x = OTHERS[0]
    s, _ = feed(s, *[vote(VoteType.PREVOTE, 0, bytes([i]) * 32, x) for i in range(10)])
    assert len(s.book.conflicts[(0, VoteType.PREVOTE, x)]) == 1


def test_future_height_buffered_and_replayed_past_dropped() -> None:
    s, _ = start()
    h2: list[Input] = [proposal(0, W, h=2), *precommits(0, W, OTHERS, h=2)]
    s, eff = feed(s, *h2)
    assert eff == [] and len(s.buffer) == 4
    s, _ = feed(s, *h2)  # duplicates are not buffered twice
    assert len(s.buffer) == 4
    s, _ = feed(s, vote(VoteType.PREVOTE, 0, V, OTHERS[0], h=9))  # too far ahead
    assert len(s.buffer) == 4
    s, eff = feed(s, proposal(0, V), *precommits(0, V, OTHERS))
    assert [e.height for e in eff if isinstance(e, Decide)] == [1]
    s, eff = feed(s, NewHeight(2, VSET))
    assert [(e.height, e.value_id) for e in eff if isinstance(e, Decide)] == [(2, W)]
    assert s.buffer == ()
    s3, _ = feed(s, NewHeight(3, VSET))
    assert feed(s3, *prevotes(0, V, OTHERS, h=2)) == (s3, [])  # past height
    assert feed(s3, NewHeight(2, VSET)) == (s3, [])  # no going back


def test_proposer_requests_value_and_signs_proposal() -> None:
    p0 = prop_addr(0)
    s, eff = start(address=p0)
    assert RequestValue(1, 0) in eff
    assert feed(s, ValueToPropose(1, 1, V)) == (s, [])  # wrong round
    s, eff = feed(s, ValueToPropose(1, 0, V))
    assert eff == [SignProposal(1, 0, V, -1)]
    assert feed(s, ValueToPropose(1, 0, W)) == (s, [])  # only once
    s, eff = feed(s, ProposalReceived(Proposal(1, 0, V, -1, p0, b"sig"), True))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 0, V)]


def test_proposer_reproposes_valid_value() -> None:  # lines 15-16
    r_me = next(r for r in range(1, 8) if prop_addr(r) == ME)
    s, _ = start()
    s, _ = feed(s, proposal(0, V), *prevotes(0, V, OTHERS))
    for r in range(1, r_me):
        s, _ = to_round(s, r)
    s, eff = feed(s, *precommits(s.round, None, OTHERS),
                  TimeoutFired(TimeoutKind.PRECOMMIT, 1, s.round))
    assert SignProposal(1, r_me, V, 0) in eff
    assert not any(isinstance(e, RequestValue) for e in eff)


def test_observer_never_signs_but_decides() -> None:
    s, eff = start(address=None)
    s, eff2 = feed(s, proposal(0, V), *prevotes(0, V, ADDRS), TimeoutFired(
        TimeoutKind.PROPOSE, 1, 0), *precommits(0, V, ADDRS))
    allfx = eff + eff2
    assert not any(isinstance(e, SignVote | SignProposal | RequestValue) for e in allfx)
    assert [e.value_id for e in allfx if isinstance(e, Decide)] == [V]


def test_commit_received() -> None:
    s, _ = start()
    votes = tuple(Vote(VoteType.PRECOMMIT, 1, 3, V, a, b"sig") for a in OTHERS)
    assert feed(s, CommitReceived(CommitCertificate(1, 3, V, votes[:2])))[1] == []
    assert feed(s, CommitReceived(CommitCertificate(2, 3, V, votes)))[1] == []
    s, eff = feed(s, CommitReceived(CommitCertificate(1, 3, V, votes)))
    assert [e.value_id for e in eff if isinstance(e, Decide)] == [V]


def resume(address: bytes, *signed: ProposalReceived | VoteReceived
           ) -> tuple[ConsensusState, list[Effect]]:
    s = initial_state(ConsensusConfig(address=address, timeouts=CFG_T))
    return feed(s, Resume(1, VSET, tuple(signed)))


def test_resume_after_a_prevote_waits_in_the_prevote_step() -> None:
    # All four restart after ME prevoted V in round 0 and no quorum formed (issue 8 #2).
    s, eff = resume(ME, vote(VoteType.PREVOTE, 0, V, ME))
    assert (s.round, s.step) == (0, RoundStep.PREVOTE)
    assert signs(eff) == [] and not [e for e in eff if isinstance(e, RequestValue)]
    assert s.book.tally[(0, VoteType.PREVOTE, V)] == 1  # its own vote counts again
    # never asks to sign round 0's prevote again, whatever arrives
    s, eff = feed(s, TimeoutFired(TimeoutKind.PROPOSE, 1, 0), proposal(0, W))
    assert signs(eff) == []
    # the others' re-sent prevotes and the re-sent proposal form the quorum: lock, precommit
    s, eff = feed(s, proposal(0, V), *prevotes(0, V, OTHERS[:2]))
    assert signs(eff) == [SignVote(VoteType.PRECOMMIT, 1, 0, V)]
    assert (s.locked_round, s.locked_value) == (0, V)


def test_resume_as_the_proposer_keeps_its_proposal() -> None:
    p0 = prop_addr(0)
    own = ProposalReceived(Proposal(1, 0, V, -1, p0, b"sig"), True)
    s, eff = resume(p0, own)  # crashed after signing the proposal, before its prevote
    assert not [e for e in eff if isinstance(e, RequestValue | SignProposal)]
    assert ScheduleTimeout(TimeoutKind.PROPOSE, 1, 0,
                           timeout_duration(CFG_T, TimeoutKind.PROPOSE, 0)) in eff
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 0, V)]  # its own proposal, counted
    s, eff = resume(p0, own, vote(VoteType.PREVOTE, 0, V, p0))
    assert eff == [] and s.step == RoundStep.PREVOTE and 0 in s.proposed
    s, eff = feed(s, *prevotes(0, V, [a for a in ADDRS if a != p0][:2]))
    assert signs(eff) == [SignVote(VoteType.PRECOMMIT, 1, 0, V)]


def test_resume_restores_the_lock_and_the_round() -> None:
    s, eff = resume(ME, vote(VoteType.PREVOTE, 2, V, ME), vote(VoteType.PRECOMMIT, 2, V, ME),
                    vote(VoteType.PREVOTE, 1, W, ME), vote(VoteType.PRECOMMIT, 1, W, ME))
    assert (s.round, s.step, s.locked_value, s.locked_round, s.valid_round) == (
        2, RoundStep.PRECOMMIT, V, 2, 2)
    assert eff == []
    s, _ = to_round(s, 3)
    _, eff = feed(s, proposal(3, W))
    assert signs(eff) == [SignVote(VoteType.PREVOTE, 1, 3, None)]  # locked on V


def test_resume_after_a_nil_round_moves_on_with_the_timeouts() -> None:
    # a slow block made round 0 end nil before the restart (issue 8 #2, second case)
    s, eff = resume(ME, vote(VoteType.PREVOTE, 0, None, ME), vote(VoteType.PRECOMMIT, 0, None, ME))
    assert (s.round, s.step, eff) == (0, RoundStep.PRECOMMIT, [])
    s, eff = feed(s, *precommits(0, None, OTHERS[:2]))  # re-sent after their restart
    assert eff == [ScheduleTimeout(TimeoutKind.PRECOMMIT, 1, 0,
                                   timeout_duration(CFG_T, TimeoutKind.PRECOMMIT, 0))]
    s, eff = feed(s, TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
    assert (s.round, s.step) == (1, RoundStep.PROPOSE)
    assert ScheduleTimeout(TimeoutKind.PROPOSE, 1, 1,
                           timeout_duration(CFG_T, TimeoutKind.PROPOSE, 1)) in eff


def test_resume_ignores_others_messages_and_other_heights() -> None:
    _, eff0 = start()
    s, eff = resume(ME, vote(VoteType.PREVOTE, 0, V, OTHERS[0]),
                    vote(VoteType.PREVOTE, 3, V, ME, h=2))
    assert (s.round, s.step, s.signed, eff) == (0, RoundStep.PROPOSE, frozenset(), eff0)
    assert s.book.tally == {}
    observer = initial_state(ConsensusConfig(address=None, timeouts=CFG_T))
    s, _ = feed(observer, Resume(1, VSET, (vote(VoteType.PREVOTE, 0, V, ME),)))
    assert s.signed == frozenset() and s.step == RoundStep.PROPOSE


def test_timeout_growth_and_bound() -> None:
    cfg = TimeoutConfig(propose_ms=1000, propose_delta_ms=500, prevote_ms=200,
                        prevote_delta_ms=100, precommit_ms=300, precommit_delta_ms=0,
                        max_ms=3000)
    assert [timeout_duration(cfg, TimeoutKind.PROPOSE, r) for r in range(6)] == [
        1000, 1500, 2000, 2500, 3000, 3000]
    assert timeout_duration(cfg, TimeoutKind.PREVOTE, 3) == 500
    assert timeout_duration(cfg, TimeoutKind.PRECOMMIT, 100) == 300
    assert timeout_duration(cfg, TimeoutKind.PROPOSE, 10**9) == 3000
    with pytest.raises(InvalidConfig):
        TimeoutConfig(propose_ms=-1)
    with pytest.raises(InvalidConfig):
        ConsensusConfig(address=None, max_buffered=-1)


# --- totality and the at-most-once signing invariant ---------------------------------------

_values = st.sampled_from([V, W, b"\x0c" * 32])
_opt_values = st.one_of(st.none(), _values)
_addrs = st.sampled_from([*ADDRS, b"\xee" * 20])
_heights = st.integers(-1, 4)
_rounds = st.integers(-2, 6)
_vtypes = st.sampled_from(list(VoteType))
_kinds = st.sampled_from(list(TimeoutKind))
_votes = st.builds(Vote, _vtypes, _heights, _rounds, _opt_values, _addrs, st.binary(max_size=4))
_inputs: st.SearchStrategy[Input] = st.one_of(
    st.builds(NewHeight, _heights, st.just(VSET)),
    st.builds(Resume, _heights, st.just(VSET), st.lists(st.one_of(
        st.builds(VoteReceived, _votes),
        st.builds(ProposalReceived, st.builds(Proposal, _heights, _rounds, _values,
                                              st.integers(-2, 6), _addrs, st.just(b"")),
                  st.booleans())), max_size=6).map(tuple)),
    st.builds(ProposalReceived, st.builds(Proposal, _heights, _rounds, _values,
                                          st.integers(-2, 6), _addrs, st.just(b"")),
              st.booleans()),
    st.builds(ValueToPropose, _heights, _rounds, _values),
    st.builds(VoteReceived, _votes),
    st.builds(TimeoutFired, _kinds, _heights, _rounds),
    st.builds(CommitReceived, st.builds(CommitCertificate, _heights, _rounds, _values,
                                        st.lists(_votes, max_size=5).map(tuple))),
)


@settings(max_examples=300, deadline=None)
@given(address=st.sampled_from([*ADDRS, None]), inputs=st.lists(_inputs, max_size=60))
def test_step_total_and_signs_at_most_once(address: bytes | None, inputs: list[Input]) -> None:
    s = initial_state(ConsensusConfig(address=address, timeouts=CFG_T, max_buffered=20))
    signed: set[tuple[int, int, VoteType]] = set()
    proposed: set[tuple[int, int]] = set()
    decided: set[int] = set()
    last: tuple[int, int, int] = (0, 0, 0)
    for inp in inputs:
        before = s.height
        s, effects = step(s, inp)
        if isinstance(inp, Resume) and s.height == inp.height > before and address:
            # what it signed before the restart counts as signed, and comes first
            for m in inp.signed:
                if isinstance(m, VoteReceived) and m.vote.validator == address and (
                        m.vote.height == inp.height and m.vote.round >= 0):
                    signed.add((inp.height, m.vote.round, m.vote.type))
                    last = max(last, (inp.height, m.vote.round, int(m.vote.type)))
                elif isinstance(m, ProposalReceived) and m.proposal.proposer == address and (
                        m.proposal.height == inp.height and m.proposal.round >= 0):
                    proposed.add((inp.height, m.proposal.round))
                    last = max(last, (inp.height, m.proposal.round, 1))
        for e in effects:
            if isinstance(e, SignVote):
                key = (e.height, e.round, e.type)
                assert key not in signed
                signed.add(key)
                assert address is not None
                hrs = (e.height, e.round, int(e.type))
                assert hrs > last  # never regresses (privval's guard would refuse)
                last = hrs
            elif isinstance(e, SignProposal):
                assert (e.height, e.round) not in proposed
                proposed.add((e.height, e.round))
                assert (e.height, e.round, 1) > last
                last = (e.height, e.round, 1)
            elif isinstance(e, Decide):
                assert e.height not in decided
                decided.add(e.height)
                assert verify_certificate(e.certificate, VSET, "c", lambda *_: True)
        assert len(s.buffer) <= 20
        assert s.locked_round == -1 or s.locked_round <= s.valid_round
