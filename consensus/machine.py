"""Tendermint BFT consensus (Buchman, Kwon, Milosevic, arXiv:1807.04938, Algorithm 1) as a
pure state machine: ``step(state, input) -> (state, effects)``.

No I/O, clocks, randomness or threads: the *host* (the node) owns those and talks to the
core only through :data:`Input` values and :data:`Effect` values.

Host contract
-------------
* Start a height with :class:`NewHeight` (also the very first start). After a
  :class:`Decide` the machine waits (step ``COMMIT``) until the host has committed the
  block and sends ``NewHeight(height + 1, next_validator_set)``. After a restart in the
  middle of a height, start it with :class:`Resume` and the own messages of the height
  from the sign log, and re-broadcast those messages (the proposal with its block).
* Verify every signature (``vote_sign_bytes`` / ``proposal_sign_bytes``) *before*
  feeding a message; the core trusts what it is given. Validate the proposed block
  (execute it) and pass the result as ``ProposalReceived.value_valid`` (the paper's
  ``valid(v)``). The host keeps the block bodies by id: ``SignProposal`` may name an
  earlier value (the paper's ``validValue``) that must be re-broadcast.
* Execute effects in order:
  ``RequestValue`` -> build a block and answer ``ValueToPropose`` (the paper's
  ``getValue()``); ``SignProposal`` / ``SignVote`` -> write the WAL, sign (through the
  double-sign guard), broadcast, and feed the signed message back as
  ``ProposalReceived`` / ``VoteReceived`` (own messages are counted only then, so the
  core never needs keys); ``ScheduleTimeout`` -> after ``duration_ms`` feed
  ``TimeoutFired``; ``Decide`` -> commit; ``Evidence`` -> store/gossip it.
* Gossip: the paper assumes every message of a correct process eventually reaches every
  correct process; the host must re-send its current-height messages periodically and
  help lagging peers (e.g. with the decided proposal and certificate).

Invariants (for any input sequence)
-----------------------------------
* At most one ``SignVote`` per (height, round, type) and at most one ``SignProposal`` per
  (height, round); sign requests of one height never go back in (round, step) order.
* At most one ``Decide`` per height, and only with a certificate of > 2/3 power of
  precommits that the host fed in (so it verifies if the host verified the votes).
* ``locked_round <= valid_round`` whenever ``locked_round >= 0``.
* Vote counting follows the paper: "2f+1 <PREVOTE, h, r, id(v)>" counts the distinct
  validators that sent a prevote for id(v); "2f+1 <PREVOTE, h, r, *>" counts each
  validator once. A validator that equivocates (two votes for one (height, round, type)
  with different values) is reported once with ``Evidence``; its first vote is the one
  kept for the "any" counts, and its conflicting votes (at most
  ``max_conflicting_votes`` per slot) also count for *their* value. This is safe (two
  value quorums still intersect in a correct validator) and necessary for liveness: a
  correct process that locked on v thanks to an equivocator's vote for v must be able to
  convince the others, who may first have received that validator's other vote
  (CometBFT gets the same effect with its "peer maj23" vote tracking). Bounding the
  conflicting votes bounds memory; a validator spamming more conflicting values than the
  bound can only delay, never break, agreement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum

from yilian.consensus.config import ConsensusConfig, TimeoutKind, timeout_duration
from yilian.consensus.types import (
    NIL_ROUND,
    CommitCertificate,
    DuplicateVoteEvidence,
    Proposal,
    ValidatorSet,
    Vote,
    VoteType,
    proposer,
    verify_certificate,
)
from yilian.consensus.votes import VoteBook

# --- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewHeight:
    """Start consensus for ``height`` (>= 1) with ``validator_set``, in round 0.

    Accepted only if ``height`` is above the current height (or nothing started yet).
    """

    height: int
    validator_set: ValidatorSet


@dataclass(frozen=True)
class Resume:
    """Start ``height`` after a restart, knowing what this node already signed in it.

    ``signed`` holds this node's own proposals and votes of the height, from the host's
    sign log, as the inputs the host fed back after signing them (``ProposalReceived``
    with the host's ``valid(v)`` of the block, ``VoteReceived``). The machine starts in
    the highest round it signed in, at the step its signatures there imply, with
    ``signed`` / ``proposed`` marking every (round, type) it signed (so it never asks to
    sign them again), its lock and valid value set from its highest-round non-nil
    precommit, the propose timeout scheduled if it is still in the propose step, and the
    restored messages counted. The host re-broadcasts them: that and the timers are what
    let rounds advance after every validator restarts. Messages not by this node or not of
    ``height`` are ignored; with none left this is ``NewHeight``. Accepted when
    ``NewHeight`` would be.
    """

    height: int
    validator_set: ValidatorSet
    signed: tuple[ProposalReceived | VoteReceived, ...] = ()


@dataclass(frozen=True)
class ProposalReceived:
    """A proposal whose signature the host verified; ``value_valid`` is ``valid(v)``."""

    proposal: Proposal
    value_valid: bool


@dataclass(frozen=True)
class ValueToPropose:
    """The host's answer to :class:`RequestValue` (the paper's ``getValue()``)."""

    height: int
    round: int
    value_id: bytes


@dataclass(frozen=True)
class VoteReceived:
    """A vote whose signature the host verified (own votes included)."""

    vote: Vote


@dataclass(frozen=True)
class TimeoutFired:
    """A timeout previously requested by :class:`ScheduleTimeout` expired."""

    kind: TimeoutKind
    height: int
    round: int


@dataclass(frozen=True)
class CommitReceived:
    """A commit certificate for the current height obtained outside the vote exchange
    (block sync, a peer helping a lagging node). The host must first check it with
    ``check_certificate`` against the height's validator set (signatures) and hold the
    block it names. The core re-checks its structure (distinct validators' precommits for
    one (height, round, value) with > 2/3 power) and decides.

    This completes the paper's assumption that a lagging correct process eventually
    receives the decisive precommits: if it already counted a Byzantine validator's
    *other* precommit, the vote exchange alone could never let it decide.
    """

    certificate: CommitCertificate


Input = (NewHeight | Resume | ProposalReceived | ValueToPropose | VoteReceived | TimeoutFired
         | CommitReceived)

# --- effects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestValue:
    """This node proposes in (height, round) and has no ``validValue``: build a block and
    answer with :class:`ValueToPropose`."""

    height: int
    round: int


@dataclass(frozen=True)
class SignProposal:
    """Sign and broadcast ``Proposal(height, round, value_id, valid_round, me)``, then feed
    it back as ``ProposalReceived(proposal, value_valid=True)``."""

    height: int
    round: int
    value_id: bytes
    valid_round: int


@dataclass(frozen=True)
class SignVote:
    """Sign and broadcast ``Vote(type, height, round, value_id, me)``, then feed it back
    as ``VoteReceived``."""

    type: VoteType
    height: int
    round: int
    value_id: bytes | None


@dataclass(frozen=True)
class ScheduleTimeout:
    """Feed ``TimeoutFired(kind, height, round)`` after ``duration_ms``."""

    kind: TimeoutKind
    height: int
    round: int
    duration_ms: int


@dataclass(frozen=True)
class Decide:
    """``value_id`` is decided at ``height``; ``certificate`` proves it."""

    height: int
    value_id: bytes
    certificate: CommitCertificate


@dataclass(frozen=True)
class Evidence:
    """A validator double-signed; the host should persist and gossip the evidence."""

    evidence: DuplicateVoteEvidence


Effect = RequestValue | SignProposal | SignVote | ScheduleTimeout | Decide | Evidence

# --- state -------------------------------------------------------------------------------


class RoundStep(IntEnum):
    """``UNSTARTED`` before the first ``NewHeight``; ``COMMIT`` after ``Decide`` until
    the next ``NewHeight``. The paper's steps are PROPOSE < PREVOTE < PRECOMMIT."""

    UNSTARTED = 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMIT = 4


# once-per-round upon-rules ("for the first time")
_FIRED_PREVOTE_TIMEOUT = "L34"
_FIRED_LOCK = "L36"
_FIRED_PRECOMMIT_TIMEOUT = "L47"


@dataclass(frozen=True)
class ConsensusState:
    """The state of one process ``p`` (the paper's variables, plus the message log).

    Mappings are never mutated: every change builds a new mapping (treat them as
    immutable; the state is not hashable). ``proposals`` keeps, per round, the proposals
    from that round's proposer (one per value, in arrival order, at most
    ``1 + max_conflicting_votes``: an equivocating proposer's others are kept because a
    quorum may form for any of them) with the host's ``valid(v)``; ``book`` the votes and
    their tallies (:class:`~yilian.consensus.votes.VoteBook`). ``signed`` / ``proposed``
    record the sign requests issued in this height (the at-most-once guard; restored by
    :class:`Resume`). ``buffer`` holds future-height inputs.
    """

    config: ConsensusConfig
    height: int = 0
    round: int = 0
    step: RoundStep = RoundStep.UNSTARTED
    validator_set: ValidatorSet | None = None
    locked_value: bytes | None = None
    locked_round: int = NIL_ROUND
    valid_value: bytes | None = None
    valid_round: int = NIL_ROUND
    proposals: Mapping[int, tuple[tuple[Proposal, bool], ...]] = field(default_factory=dict)
    book: VoteBook = field(default_factory=VoteBook)
    fired: frozenset[str] = frozenset()
    signed: frozenset[tuple[int, VoteType]] = frozenset()
    proposed: frozenset[int] = frozenset()
    decision: CommitCertificate | None = None
    buffer: tuple[ProposalReceived | VoteReceived, ...] = ()

    @property
    def is_validator(self) -> bool:
        """True if this node signs in the current height."""
        a = self.config.address
        return a is not None and self.validator_set is not None and a in self.validator_set


def initial_state(config: ConsensusConfig) -> ConsensusState:
    """A machine that has not started; feed :class:`NewHeight` to start."""
    return ConsensusState(config=config)


# --- the transition function ---------------------------------------------------------------


def step(state: ConsensusState, inp: Input) -> tuple[ConsensusState, tuple[Effect, ...]]:
    """Apply one input; return the new state and the effects for the host, in order.

    Total: never raises on well-typed input; irrelevant, stale or malformed inputs
    return ``(state, ())``.
    """
    effects: list[Effect] = []
    if isinstance(inp, NewHeight | Resume):
        state = _on_new_height(state, inp, effects)
    elif isinstance(inp, VoteReceived | ProposalReceived):
        state = _on_message(state, inp, effects)
    elif isinstance(inp, ValueToPropose):
        state = _on_value(state, inp, effects)
    elif isinstance(inp, TimeoutFired):
        state = _on_timeout(state, inp, effects)
    elif isinstance(inp, CommitReceived):
        state = _on_commit(state, inp.certificate, effects)
    return state, tuple(effects)


def _on_new_height(s: ConsensusState, inp: NewHeight | Resume,
                   effects: list[Effect]) -> ConsensusState:
    if inp.height < 1 or (s.step != RoundStep.UNSTARTED and inp.height <= s.height):
        return s
    replay = tuple(m for m in s.buffer if _height_of(m) == inp.height)
    keep = tuple(m for m in s.buffer if _height_of(m) > inp.height)
    s = ConsensusState(config=s.config, height=inp.height, validator_set=inp.validator_set,
                       step=RoundStep.PROPOSE, buffer=keep)
    own = _own_signed(s, inp.signed) if isinstance(inp, Resume) else ()
    s = _restore(s, own, effects) if own else _start_round(s, 0, effects)  # Alg.1 line 10
    s = _run_rules(s, effects)
    for m in (*own, *replay):
        s = _on_message(s, m, effects)
    return s


def _own_signed(s: ConsensusState, msgs: tuple[ProposalReceived | VoteReceived, ...]
                ) -> tuple[ProposalReceived | VoteReceived, ...]:
    me = s.config.address
    if not s.is_validator:
        return ()
    return tuple(m for m in msgs if _height_of(m) == s.height and (
        m.vote.validator if isinstance(m, VoteReceived) else m.proposal.proposer) == me
        and _round_of(m) >= 0)


def _restore(s: ConsensusState, own: tuple[ProposalReceived | VoteReceived, ...],
             effects: list[Effect]) -> ConsensusState:
    """Resume after a restart: the state just after the last own signature (see Resume)."""
    votes = [m.vote for m in own if isinstance(m, VoteReceived)
             and m.vote.type in (VoteType.PREVOTE, VoteType.PRECOMMIT)]
    s = replace(s, signed=frozenset((v.round, VoteType(v.type)) for v in votes),
                proposed=frozenset(m.proposal.round for m in own
                                   if isinstance(m, ProposalReceived)))
    locks = [(v.round, v.value_id) for v in votes
             if v.type == VoteType.PRECOMMIT and v.value_id is not None]
    if locks:  # Alg.1 lines 36-43 ran for our highest-round non-nil precommit
        r, v = max(locks)
        s = replace(s, locked_round=r, locked_value=v, valid_round=r, valid_value=v)
    top = max(_round_of(m) for m in own)
    done = {t for r, t in s.signed if r == top}
    if not done:  # only our proposal in this round: still in the propose step
        return _start_round(s, top, effects)
    return replace(s, round=top, step=RoundStep.PRECOMMIT if VoteType.PRECOMMIT in done
                   else RoundStep.PREVOTE)


def _height_of(m: ProposalReceived | VoteReceived) -> int:
    return m.proposal.height if isinstance(m, ProposalReceived) else m.vote.height


def _round_of(m: ProposalReceived | VoteReceived) -> int:
    return m.proposal.round if isinstance(m, ProposalReceived) else m.vote.round


def _on_message(s: ConsensusState, m: ProposalReceived | VoteReceived,
                effects: list[Effect]) -> ConsensusState:
    h = _height_of(m)
    if h < s.height or h < 1:
        return s  # past height: drop
    if h > s.height or s.step == RoundStep.UNSTARTED:
        cfg = s.config
        if (h <= s.height + cfg.future_heights and len(s.buffer) < cfg.max_buffered
                and m not in s.buffer):
            return replace(s, buffer=(*s.buffer, m))
        return s
    if s.step == RoundStep.COMMIT:
        return s  # decided: ignore until NewHeight
    if isinstance(m, VoteReceived):
        return _on_vote(s, m.vote, effects)
    return _on_proposal(s, m.proposal, m.value_valid, effects)


def _round_ok(s: ConsensusState, r: int) -> bool:
    return 0 <= r <= s.round + s.config.max_round_ahead


def _on_vote(s: ConsensusState, vote: Vote, effects: list[Effect]) -> ConsensusState:
    vset = s.validator_set
    assert vset is not None
    val = vset.get(vote.validator)
    if val is None or not _round_ok(s, vote.round) or vote.type not in (
            VoteType.PREVOTE, VoteType.PRECOMMIT):
        return s  # non-validator / out of range: ignore
    book, evidence = s.book.add(vote, val.power, s.config.max_conflicting_votes)
    if evidence is not None:
        effects.append(Evidence(evidence))
    if book is s.book:
        return s  # duplicate, or a conflicting vote over the bound
    return _run_rules(replace(s, book=book), effects)


def _on_proposal(s: ConsensusState, p: Proposal, valid: bool,
                 effects: list[Effect]) -> ConsensusState:
    vset = s.validator_set
    assert vset is not None
    if (not _round_ok(s, p.round) or not (NIL_ROUND <= p.valid_round < p.round)
            or p.proposer != proposer(vset, s.height, p.round)):
        return s  # out of range, malformed vr, or not from proposer(h, r)
    have = s.proposals.get(p.round, ())
    if (any(q.value_id == p.value_id and q.valid_round == p.valid_round for q, _ in have)
            or len(have) > s.config.max_conflicting_votes):
        return s  # duplicate, or too many conflicting proposals
    s = replace(s, proposals={**s.proposals, p.round: (*have, (p, bool(valid)))},
                book=s.book.with_sender(p.round, p.proposer))
    return _run_rules(s, effects)


def _on_value(s: ConsensusState, inp: ValueToPropose, effects: list[Effect]) -> ConsensusState:
    # Alg.1 lines 16-18: proposal <- getValue(); broadcast PROPOSAL(h, r, proposal, -1)
    if (inp.height != s.height or inp.round != s.round or s.step != RoundStep.PROPOSE
            or inp.round in s.proposed or s.valid_value is not None
            or not _is_proposer(s, s.round)):
        return s
    effects.append(SignProposal(s.height, s.round, inp.value_id, NIL_ROUND))
    return replace(s, proposed=s.proposed | {s.round})


def _on_commit(s: ConsensusState, cert: CommitCertificate,
               effects: list[Effect]) -> ConsensusState:
    if (s.validator_set is None or cert.height != s.height
            or s.step in (RoundStep.UNSTARTED, RoundStep.COMMIT)
            or not isinstance(cert.value_id, bytes)
            or not verify_certificate(cert, s.validator_set, "", _structure_only)):
        return s
    effects.append(Decide(s.height, cert.value_id, cert))
    return replace(s, step=RoundStep.COMMIT, decision=cert)


def _structure_only(public_key: bytes, message: bytes, signature: bytes) -> bool:
    return True  # signatures were checked by the host


def _on_timeout(s: ConsensusState, t: TimeoutFired, effects: list[Effect]) -> ConsensusState:
    if (t.height != s.height or t.round != s.round
            or s.step in (RoundStep.UNSTARTED, RoundStep.COMMIT)):
        return s
    if t.kind == TimeoutKind.PROPOSE and s.step == RoundStep.PROPOSE:
        # Alg.1 lines 57-60: OnTimeoutPropose -> prevote nil
        s = _cast(s, VoteType.PREVOTE, None, effects)
        s = replace(s, step=RoundStep.PREVOTE)
    elif t.kind == TimeoutKind.PREVOTE and s.step == RoundStep.PREVOTE:
        # Alg.1 lines 61-64: OnTimeoutPrevote -> precommit nil
        s = _cast(s, VoteType.PRECOMMIT, None, effects)
        s = replace(s, step=RoundStep.PRECOMMIT)
    elif t.kind == TimeoutKind.PRECOMMIT:
        # Alg.1 lines 65-67: OnTimeoutPrecommit -> StartRound(round_p + 1)
        s = _start_round(s, s.round + 1, effects)
    else:
        return s
    return _run_rules(s, effects)


# --- helpers -------------------------------------------------------------------------------


def _is_proposer(s: ConsensusState, r: int) -> bool:
    assert s.validator_set is not None
    return s.is_validator and proposer(s.validator_set, s.height, r) == s.config.address


def _cast(s: ConsensusState, typ: VoteType, value: bytes | None,
          effects: list[Effect]) -> ConsensusState:
    """Request our vote (if we are a validator and have not voted this (round, type))."""
    if not s.is_validator or (s.round, typ) in s.signed:
        return s
    effects.append(SignVote(typ, s.height, s.round, value))
    return replace(s, signed=s.signed | {(s.round, typ)})


def _start_round(s: ConsensusState, r: int, effects: list[Effect]) -> ConsensusState:
    """Alg.1 lines 11-21: StartRound(round)."""
    s = replace(s, round=r, step=RoundStep.PROPOSE, fired=frozenset())  # lines 12-13
    if _is_proposer(s, r) and r not in s.proposed:  # line 14
        if s.valid_value is not None:  # lines 15-16: re-propose validValue with validRound
            effects.append(SignProposal(s.height, r, s.valid_value, s.valid_round))
            s = replace(s, proposed=s.proposed | {r})
        else:  # line 17: getValue(), answered by ValueToPropose
            effects.append(RequestValue(s.height, r))
    # line 21: schedule OnTimeoutPropose. Deviation: also for the proposer, so a host
    # that never answers RequestValue cannot stall the round (harmless: the timeout is a
    # no-op once the own proposal has been prevoted).
    effects.append(ScheduleTimeout(TimeoutKind.PROPOSE, s.height, r,
                                   timeout_duration(s.config.timeouts, TimeoutKind.PROPOSE, r)))
    return s


def _run_rules(s: ConsensusState, effects: list[Effect]) -> ConsensusState:
    """Apply the upon-rules until none is enabled (each firing disables itself)."""
    while True:
        nxt = _fire_one(s, effects)
        if nxt is None:
            return s
        s = nxt


def _fire_one(s: ConsensusState, effects: list[Effect]) -> ConsensusState | None:
    vset = s.validator_set
    if vset is None or s.step in (RoundStep.UNSTARTED, RoundStep.COMMIT):
        return None
    q = vset.quorum
    h, rnd = s.height, s.round

    # Alg.1 lines 49-54: upon PROPOSAL(h, r, v, *) from proposer(h, r) AND 2f+1
    # PRECOMMIT(h, r, id(v)) while decision_p[h] = nil: if valid(v) decide.
    # (Resetting lock/valid and StartRound(0) of the next height happen on NewHeight.)
    for r, recs in sorted(s.proposals.items()):
        for p, valid in recs:
            if not valid or s.book.power(r, VoteType.PRECOMMIT, p.value_id) < q:
                continue
            cert = CommitCertificate(h, r, p.value_id,
                                     s.book.certificate_votes(vset, r, p.value_id))
            effects.append(Decide(h, p.value_id, cert))
            return replace(s, step=RoundStep.COMMIT, decision=cert)

    current = s.proposals.get(rnd, ())
    for p, valid in current if s.step == RoundStep.PROPOSE else ():
        v, vr = p.value_id, p.valid_round
        if vr == NIL_ROUND:
            # Alg.1 lines 22-27: upon PROPOSAL(h, r, v, -1) from proposer(h, r) while
            # step = propose: prevote id(v) if valid(v) and (lockedRound = -1 or
            # lockedValue = v), else nil.
            ok = valid and (s.locked_round == NIL_ROUND or s.locked_value == v)
            s = _cast(s, VoteType.PREVOTE, v if ok else None, effects)
            return replace(s, step=RoundStep.PREVOTE)
        if 0 <= vr < rnd and s.book.power(vr, VoteType.PREVOTE, v) >= q:
            # Alg.1 lines 28-33: upon PROPOSAL(h, r, v, vr) AND 2f+1 PREVOTE(h, vr, id(v))
            # while step = propose and 0 <= vr < round: prevote id(v) if valid(v) and
            # (lockedRound <= vr or lockedValue = v), else nil.
            ok = valid and (s.locked_round <= vr or s.locked_value == v)
            s = _cast(s, VoteType.PREVOTE, v if ok else None, effects)
            return replace(s, step=RoundStep.PREVOTE)

    if (s.step == RoundStep.PREVOTE and _FIRED_PREVOTE_TIMEOUT not in s.fired
            and s.book.any_power(rnd, VoteType.PREVOTE) >= q):
        # Alg.1 lines 34-35: upon 2f+1 PREVOTE(h, round_p, *) while step = prevote for the
        # first time: schedule OnTimeoutPrevote.
        effects.append(ScheduleTimeout(
            TimeoutKind.PREVOTE, h, rnd,
            timeout_duration(s.config.timeouts, TimeoutKind.PREVOTE, rnd)))
        return replace(s, fired=s.fired | {_FIRED_PREVOTE_TIMEOUT})

    locking = next((p.value_id for p, valid in current
                    if valid and s.book.power(rnd, VoteType.PREVOTE, p.value_id) >= q), None)
    if (locking is not None and s.step >= RoundStep.PREVOTE
            and _FIRED_LOCK not in s.fired):
        # Alg.1 lines 36-43: upon PROPOSAL(h, round_p, v, *) from proposer AND 2f+1
        # PREVOTE(h, round_p, id(v)) while valid(v) and step >= prevote for the first
        # time: if step = prevote, lock v and precommit id(v); validValue <- v.
        v = locking
        s = replace(s, fired=s.fired | {_FIRED_LOCK})
        if s.step == RoundStep.PREVOTE:
            s = replace(s, locked_value=v, locked_round=rnd)
            s = _cast(s, VoteType.PRECOMMIT, v, effects)
            s = replace(s, step=RoundStep.PRECOMMIT)
        return replace(s, valid_value=v, valid_round=rnd)

    if s.step == RoundStep.PREVOTE and s.book.power(rnd, VoteType.PREVOTE, None) >= q:
        # Alg.1 lines 44-46: upon 2f+1 PREVOTE(h, round_p, nil) while step = prevote:
        # precommit nil.
        s = _cast(s, VoteType.PRECOMMIT, None, effects)
        return replace(s, step=RoundStep.PRECOMMIT)

    if (_FIRED_PRECOMMIT_TIMEOUT not in s.fired
            and s.book.any_power(rnd, VoteType.PRECOMMIT) >= q):
        # Alg.1 lines 47-48: upon 2f+1 PRECOMMIT(h, round_p, *) for the first time:
        # schedule OnTimeoutPrecommit.
        effects.append(ScheduleTimeout(
            TimeoutKind.PRECOMMIT, h, rnd,
            timeout_duration(s.config.timeouts, TimeoutKind.PRECOMMIT, rnd)))
        return replace(s, fired=s.fired | {_FIRED_PRECOMMIT_TIMEOUT})

    # Alg.1 lines 55-56: upon f+1 messages <*, h, round, *, *> with round > round_p:
    # StartRound(round). We jump to the highest such round.
    higher = [r for r, who in s.book.senders.items()
              if r > rnd and vset.power_of(who) >= vset.f_plus_one]
    if higher:
        return _start_round(s, max(higher), effects)
    return None
