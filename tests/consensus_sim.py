"""Deterministic simulation of a yilian consensus network (tests only).

Every node runs the pure ``yilian.consensus`` state machine behind a small host that does
what the real node will: verifies real signatures, signs its own messages, broadcasts,
schedules timeouts, re-gossips its current-height messages and helps lagging peers with
the decided proposal and certificate. The network runs on virtual time from one seeded
``random.Random``: random delays, reordering, duplication, drops before the global
stabilisation time (GST) and a partition that heals at GST.

Byzantine validators (at most f) are one of:

* ``equivocate``: runs the state machine but sends one signed vote/proposal to one half
  of the network and a conflicting one (often an invalid value) to the other half;
* ``silent``: never sends anything;
* ``garbage``: sends random messages: bad signatures, non-validator senders, and validly
  signed nonsense (random heights/rounds/values, conflicting votes, proposals).

Crash-restart (``Scenario.crashes``): at a chosen *point* of the run (every effect any
node executes is a point, and so is the moment right after a node's sign log is written
and before the signed message is sent) a chosen set of correct validators, any of them or
all at once, crashes: it loses everything but what a real node keeps on disk, its
committed decisions and its sign log (every proposal and vote it signed in the height not
yet decided). After ``down_ms`` it restarts as the real driver does: ``Resume`` with its
own logged messages of the height, which it re-broadcasts. Each node's signing goes
through a guard like ``privval``'s (one message per (height, round, step), the stored
one returned when asked again); a request to sign a different one is recorded in
``SimResult.double_signs`` (never sent).

``run(scenario)`` returns a :class:`SimResult` with everything the properties need.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from sim_suites import ED25519, SUITES, SignatureSuite, Signer

from yilian.consensus import (
    CommitCertificate,
    CommitReceived,
    ConsensusConfig,
    ConsensusState,
    Decide,
    DuplicateVoteEvidence,
    Effect,
    Evidence,
    Input,
    NewHeight,
    Proposal,
    ProposalReceived,
    RequestValue,
    Resume,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutConfig,
    TimeoutFired,
    Validator,
    ValidatorSet,
    ValueToPropose,
    Vote,
    VoteReceived,
    VoteType,
    check_certificate,
    initial_state,
    proposal_sign_bytes,
    step,
    vote_sign_bytes,
)
from yilian.consensus.errors import InvalidCertificate

__all__ = ["ED25519", "SUITES", "Crash", "Scenario", "SignatureSuite", "SimResult",
           "Simulation", "random_scenario", "run"]

CHAIN_ID = "yilian-sim"
M = TypeVar("M", Proposal, Vote)  # a message a node signs

# --- scenario ------------------------------------------------------------------------------

BYZANTINE_KINDS = ("equivocate", "silent", "garbage")

SIM_TIMEOUTS = TimeoutConfig(propose_ms=400, propose_delta_ms=200, prevote_ms=200,
                             prevote_delta_ms=100, precommit_ms=200, precommit_delta_ms=100,
                             max_ms=4000)


@dataclass(frozen=True)
class Crash:
    """At global point ``at_point`` (or, if given, at virtual time ``at_ms``) the correct
    validators ``nodes`` that are up crash; each restarts ``down_ms`` later."""

    at_point: int
    nodes: tuple[int, ...]
    down_ms: int = 1000
    at_ms: int | None = None


@dataclass(frozen=True)
class Scenario:
    n: int
    seed: int
    suite: SignatureSuite = ED25519
    byzantine: tuple[tuple[int, str], ...] = ()  # (node index, kind)
    target_height: int = 3
    gst_ms: int = 3000  # drops and the partition end here
    drop_prob: float = 0.2  # before GST
    dup_prob: float = 0.05
    pre_gst_max_delay_ms: int = 1500
    post_gst_max_delay_ms: int = 100
    partition: tuple[tuple[int, ...], ...] = ()  # blocks; empty = none
    gossip_interval_ms: int = 500
    max_time_ms: int = 120_000
    crashes: tuple[Crash, ...] = ()

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    def describe(self) -> str:
        return (f"Scenario(n={self.n}, seed={self.seed}, suite={self.suite.name}, "
                f"byzantine={self.byzantine}, gst={self.gst_ms}, partition={self.partition}, "
                f"crashes={self.crashes})")


def random_scenario(n: int, seed: int, suite: SignatureSuite = ED25519,
                    target_height: int = 3) -> Scenario:
    """Derive a scenario from ``seed``: f Byzantine validators of random kinds, random GST,
    drop rate and (sometimes) a partition that heals at GST."""
    rng = random.Random(f"scenario/{n}/{seed}")
    f = (n - 1) // 3
    byz_idx = sorted(rng.sample(range(n), rng.randint(0, f)))
    byzantine = tuple((i, rng.choice(BYZANTINE_KINDS)) for i in byz_idx)
    partition: tuple[tuple[int, ...], ...] = ()
    if rng.random() < 0.5:
        order = list(range(n))
        rng.shuffle(order)
        cut = rng.randint(1, n - 1)
        partition = (tuple(sorted(order[:cut])), tuple(sorted(order[cut:])))
    return Scenario(n=n, seed=seed, suite=suite, byzantine=byzantine,
                    target_height=target_height, gst_ms=rng.randint(0, 5000),
                    drop_prob=rng.choice((0.0, 0.1, 0.3)), partition=partition)


# --- simulation ----------------------------------------------------------------------------

Msg = Proposal | Vote | CommitCertificate


@dataclass
class SimNode:
    index: int
    address: bytes
    signer: Signer
    kind: str  # "honest" or a Byzantine kind
    state: ConsensusState
    own: list[Proposal | Vote] = field(default_factory=list)  # own current-height msgs
    seen: set[tuple[bytes, bytes]] = field(default_factory=set)
    helped: set[tuple[int, int, int]] = field(default_factory=set)
    up: bool = True
    epoch: int = 0  # incarnation: timeouts of an earlier one are void
    # on disk (survive a crash): the chain and the sign log
    decided: dict[int, Decide] = field(default_factory=dict)
    decide_msgs: dict[int, list[Msg]] = field(default_factory=dict)  # for catch-up
    sign_log: dict[tuple[int, int, int], Proposal | Vote] = field(default_factory=dict)
    height_start: dict[int, int] = field(default_factory=dict)  # measurement only

    def height(self) -> int:
        """The height in progress per the disk: one above the last decided."""
        return max(self.decided, default=0) + 1


class _Crashed(Exception):
    """The node executing effects crashed: the rest of its work is lost."""


@dataclass
class SimResult:
    scenario: Scenario
    honest: list[int]
    byzantine: dict[int, str]
    vset: ValidatorSet
    decisions: dict[int, dict[int, Decide]]  # node -> height -> Decide
    height_start: dict[int, dict[int, int]]  # node -> height -> virtual time entered
    invalid_values: set[bytes]
    evidence: list[tuple[int, DuplicateVoteEvidence]]
    bad_certificates: list[str]
    end_time: int
    stabilised_at: int
    dropped_bad_sig: int
    double_signs: list[str] = field(default_factory=list)
    restarts: int = 0


class Simulation:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.rng = random.Random(sc.seed)
        self.now = 0
        self.queue: list[tuple[int, int, str, Any]] = []
        self.seq = itertools.count()
        self.invalid: set[bytes] = set()
        self.evidence: list[tuple[int, DuplicateVoteEvidence]] = []
        self.bad_certs: list[str] = []
        self.dropped_bad_sig = 0
        byz = dict(sc.byzantine)
        keys = [sc.suite.keygen(self.rng.randbytes(32)) for _ in range(sc.n)]
        addresses = [bytes([i]) * 20 for i in range(sc.n)]
        self.vset = ValidatorSet(tuple(
            Validator(addresses[i], keys[i][1], 1) for i in range(sc.n)))
        self.pubkeys = {addresses[i]: keys[i][1] for i in range(sc.n)}
        self.nodes = [
            SimNode(i, addresses[i], keys[i][0], byz.get(i, "honest"),
                    initial_state(ConsensusConfig(address=addresses[i], timeouts=SIM_TIMEOUTS)))
            for i in range(sc.n)]
        self.block_of = {}  # node index -> partition block
        for b, block in enumerate(sc.partition):
            for i in block:
                self.block_of[i] = b
        self.stabilised_at = sc.gst_ms
        self.points = 0  # crash points passed so far
        self.crash_at = {c.at_point: c for c in sc.crashes if c.at_ms is None}
        self.double_signs: list[str] = []
        self.restarts = 0
        self.pending_restarts = 0

    # -- event queue
    def push(self, at: int, kind: str, payload: Any) -> None:
        heapq.heappush(self.queue, (at, next(self.seq), kind, payload))

    # -- network
    def send(self, src: int, dst: int, msg: Msg) -> None:
        sc = self.sc
        before_gst = self.now < sc.gst_ms
        if before_gst and self.block_of and self.block_of.get(src) != self.block_of.get(dst):
            return  # partitioned
        if before_gst and self.rng.random() < sc.drop_prob:
            return
        copies = 2 if self.rng.random() < sc.dup_prob else 1
        for _ in range(copies):
            max_delay = sc.pre_gst_max_delay_ms if before_gst else sc.post_gst_max_delay_ms
            self.push(self.now + self.rng.randint(1, max_delay), "deliver", (src, dst, msg))

    def broadcast(self, src: int, msg: Msg, only: list[int] | None = None) -> None:
        for j in (only if only is not None else range(self.sc.n)):
            if j != src:
                self.send(src, j, msg)

    # -- signing
    def sign_vote(self, node: SimNode, v: Vote) -> Vote:
        return Vote(v.type, v.height, v.round, v.value_id, v.validator,
                    node.signer.sign(vote_sign_bytes(CHAIN_ID, v)))

    def sign_proposal(self, node: SimNode, p: Proposal) -> Proposal:
        return Proposal(p.height, p.round, p.value_id, p.valid_round, p.proposer,
                        node.signer.sign(proposal_sign_bytes(CHAIN_ID, p)))

    def verified(self, msg: Proposal | Vote) -> bool:
        if isinstance(msg, Vote):
            pub = self.pubkeys.get(msg.validator)
            data = vote_sign_bytes(CHAIN_ID, msg)
        else:
            pub = self.pubkeys.get(msg.proposer)
            data = proposal_sign_bytes(CHAIN_ID, msg)
        return pub is not None and self.sc.suite.verify(pub, data, msg.signature)

    def sign(self, node: SimNode, msg: M) -> M:
        if isinstance(msg, Proposal):
            return self.sign_proposal(node, msg)
        return self.sign_vote(node, msg)

    def sign_own(self, node: SimNode, msg: M) -> M | None:
        """Sign ``msg`` (unsigned), the node's own: an honest node through its sign log
        (None: refused, see :meth:`guarded`), a Byzantine one as it is."""
        if node.kind != "honest":
            return self.sign(node, msg)
        signed = self.guarded(node, msg)
        assert signed is None or isinstance(signed, type(msg))
        return cast("M | None", signed)

    def send_own(self, node: SimNode, msg: Proposal | Vote,
                 twin: Proposal | Vote | None) -> None:
        """Keep ``msg`` as the node's own and broadcast it; with a ``twin`` (an equivocator's
        conflicting message) ``msg`` goes to one half of the network, ``twin`` to the other."""
        node.own.append(msg)
        if twin is None:
            self.broadcast(node.index, msg)
        else:
            a, b = self.halves(node)
            self.broadcast(node.index, msg, a)
            self.broadcast(node.index, twin, b)

    def guarded(self, node: SimNode, msg: Proposal | Vote) -> Proposal | Vote | None:
        """Sign ``msg`` (unsigned) through the node's sign log, like ``privval``: the
        stored message if that (height, round, step) was signed identically, None (and a
        recorded double sign) if differently; else sign, log (the synced write), and pass
        the crash point between logging and sending."""
        step = 1 if isinstance(msg, Proposal) else int(msg.type)
        slot = (msg.height, msg.round, step)
        old = node.sign_log.get(slot)
        if old is not None:
            if replace(old, signature=b"") == msg:
                return old
            self.double_signs.append(f"node {node.index} asked to sign {msg} after {old}")
            return None
        signed = self.sign(node, msg)
        node.sign_log[slot] = signed
        self.point(node)  # crashed here: logged, never sent
        return signed

    # -- crashes
    def point(self, node: SimNode | None) -> None:
        """One more crash point; crash whoever the scenario says crashes here. Raises
        :class:`_Crashed` if ``node`` (executing now) is among them."""
        self.points += 1
        crash = self.crash_at.get(self.points)
        if crash is not None:
            self.crash(crash)
            if node is not None and not node.up:
                raise _Crashed

    def crash(self, crash: Crash) -> None:
        for i in crash.nodes:
            victim = self.nodes[i]
            if victim.kind != "honest" or not victim.up:
                continue
            victim.up = False
            victim.epoch += 1
            victim.state = initial_state(victim.state.config)  # memory is lost
            victim.own, victim.seen, victim.helped = [], set(), set()
            self.pending_restarts += 1
            self.push(self.now + crash.down_ms, "restart", i)

    def restart(self, i: int) -> None:
        """Start again from the disk: Resume the height with the own logged messages,
        re-broadcast them (the proposal included)."""
        node = self.nodes[i]
        node.up = True
        self.restarts += 1
        self.pending_restarts -= 1
        self.stabilised_at = max(self.stabilised_at, self.now)
        h = node.height()
        if h > self.sc.target_height:
            return
        own = [m for (hh, _, _), m in sorted(node.sign_log.items()) if hh == h]
        for m in own:
            self.broadcast(i, m)
        self.feed(node, Resume(h, self.vset, tuple(
            VoteReceived(m) if isinstance(m, Vote)
            else ProposalReceived(m, m.value_id not in self.invalid) for m in own)))

    # -- host of one node
    def feed(self, node: SimNode, first: Input) -> None:
        if not node.up:
            return
        work: deque[Input] = deque([first])
        try:
            while work:
                inp = work.popleft()
                if isinstance(inp, NewHeight | Resume):
                    node.own = [m for m in node.sign_log.values() if m.height == inp.height]
                    node.height_start.setdefault(inp.height, self.now)
                node.state, effects = step(node.state, inp)
                for e in effects:
                    self.point(node)
                    self.handle(node, e, work)
        except _Crashed:
            return

    def halves(self, node: SimNode) -> tuple[list[int], list[int]]:
        others = [j for j in range(self.sc.n) if j != node.index]
        self.rng.shuffle(others)
        k = len(others) // 2
        return others[:k], others[k:]

    def handle(self, node: SimNode, e: Effect, work: deque[Input]) -> None:
        sc = self.sc
        if isinstance(e, RequestValue):
            value = self.rng.randbytes(32)
            if node.kind == "equivocate" and self.rng.random() < 0.5:
                self.invalid.add(value)
            work.append(ValueToPropose(e.height, e.round, value))
        elif isinstance(e, SignProposal):
            p = self.sign_own(node, Proposal(e.height, e.round, e.value_id, e.valid_round,
                                             node.address))
            if p is None:
                return
            twin = None
            if node.kind == "equivocate":
                bad = self.rng.randbytes(32)
                self.invalid.add(bad)
                twin = self.sign_proposal(node, Proposal(e.height, e.round, bad, -1,
                                                         node.address))
            self.send_own(node, p, twin)
            work.append(ProposalReceived(p, e.value_id not in self.invalid))
        elif isinstance(e, SignVote):
            v = self.sign_own(node, Vote(e.type, e.height, e.round, e.value_id, node.address))
            if v is None:
                return
            twin_vote = None
            if node.kind == "equivocate":
                other = None if e.value_id is not None else self.rng.randbytes(32)
                twin_vote = self.sign_vote(node, Vote(e.type, e.height, e.round, other,
                                                      node.address))
            self.send_own(node, v, twin_vote)
            work.append(VoteReceived(v))
        elif isinstance(e, ScheduleTimeout):
            self.push(self.now + e.duration_ms, "timeout",
                      (node.index, node.epoch, TimeoutFired(e.kind, e.height, e.round)))
        elif isinstance(e, Decide):
            node.decided[e.height] = e
            node.sign_log = {k: m for k, m in node.sign_log.items() if k[0] > e.height}
            try:
                check_certificate(e.certificate, self.vset, CHAIN_ID, sc.suite.verify)
            except InvalidCertificate as exc:
                self.bad_certs.append(f"node {node.index} height {e.height}: {exc}")
            props = [q for q, _ in node.state.proposals.get(e.certificate.round, ())
                     if q.value_id == e.value_id]
            node.decide_msgs[e.height] = [e.certificate, *props[:1]]
            if e.height < sc.target_height:
                work.append(NewHeight(e.height + 1, self.vset))
        elif isinstance(e, Evidence):
            self.evidence.append((node.index, e.evidence))

    def deliver(self, src: int, dst: int, msg: Msg) -> None:
        node = self.nodes[dst]
        if node.kind in ("silent", "garbage") or not node.up:
            return
        h = msg.height
        if isinstance(msg, CommitCertificate):
            if h == node.state.height and h not in node.decided:
                try:  # block sync: the host checks signatures, then the core decides
                    check_certificate(msg, self.vset, CHAIN_ID, self.sc.suite.verify)
                except InvalidCertificate:
                    self.dropped_bad_sig += 1
                    return
                self.feed(node, CommitReceived(msg))
            return
        if h in node.decided:
            # the sender has not decided h (yet): help it, even if the message was seen
            self.help(node, src, h)
        if h < node.state.height:
            return
        key = (vote_sign_bytes(CHAIN_ID, msg) if isinstance(msg, Vote)
               else proposal_sign_bytes(CHAIN_ID, msg), msg.signature)
        if key in node.seen:
            return
        if not self.verified(msg):
            self.dropped_bad_sig += 1
            return
        if h == node.state.height:
            node.seen.add(key)  # future-height messages may need re-delivery later
        if isinstance(msg, Vote):
            self.feed(node, VoteReceived(msg))
        else:
            self.feed(node, ProposalReceived(msg, msg.value_id not in self.invalid))

    def help(self, node: SimNode, peer: int, h: int) -> None:
        """A lagging peer sent a message of height ``h``: send it the decided proposal and
        commit certificate of ``h`` (at most once per gossip interval)."""
        slot = (peer, h, self.now // self.sc.gossip_interval_ms)
        if h in node.decide_msgs and slot not in node.helped:
            node.helped.add(slot)
            for m in node.decide_msgs[h]:
                self.send(node.index, peer, m)

    def gossip(self, i: int) -> None:
        node = self.nodes[i]
        if not node.up:
            pass
        elif node.kind == "garbage":
            self.send_garbage(node)
        elif node.kind != "silent":
            for m in self.gossip_set(node):
                self.broadcast(i, m)
        self.push(self.now + self.sc.gossip_interval_ms, "gossip", i)

    @staticmethod
    def gossip_set(node: SimNode) -> list[Msg]:
        """What a node re-sends each interval: its own current-height messages, and (as the
        paper's gossip assumes: messages received by a correct process reach all correct
        processes) the proposals and all votes it holds for its current round and its
        valid round, including equivocating ones, which can justify its lock."""
        st = node.state
        rounds = {st.round, st.valid_round} - {-1}
        msgs: dict[Msg, None] = dict.fromkeys(node.own)
        for r in sorted(rounds):
            msgs.update(dict.fromkeys(q for q, _ in st.proposals.get(r, ())))
        for key, v in st.book.votes.items():
            if key[0] in rounds:
                msgs[v] = None
        for key, vs in st.book.conflicts.items():
            if key[0] in rounds:
                msgs.update(dict.fromkeys(vs))
        return list(msgs)

    def send_garbage(self, node: SimNode) -> None:
        rng = self.rng
        h = max(n.state.height for n in self.nodes)
        for _ in range(3):
            dst = rng.randrange(self.sc.n)
            if dst == node.index:
                continue
            kind = rng.randrange(5)
            typ = rng.choice((VoteType.PREVOTE, VoteType.PRECOMMIT))
            height = max(1, h + rng.randint(-1, 3))
            rnd = rng.choice((0, 1, 2, rng.randint(0, 10**9)))
            value = rng.choice((None, rng.randbytes(32)))
            msg: Msg
            if kind == 0:  # impersonation with a bad signature
                victim = self.nodes[rng.randrange(self.sc.n)].address
                msg = Vote(typ, height, rnd, value, victim, rng.randbytes(64))
            elif kind == 1:  # non-validator
                msg = Vote(typ, height, rnd, value, rng.randbytes(20), rng.randbytes(64))
            elif kind == 2:  # validly signed nonsense vote (may equivocate)
                msg = self.sign_vote(node, Vote(typ, height, rnd, value, node.address))
            elif kind == 3:  # validly signed random proposal
                vr = rng.randint(-2, 3)
                msg = self.sign_proposal(node, Proposal(height, rnd, rng.randbytes(32), vr,
                                                        node.address))
            else:  # corrupted copy of a real honest message
                honest = [m for n in self.nodes if n.kind == "honest" for m in n.own]
                if not honest:
                    continue
                real = rng.choice(honest)
                msg = Vote(real.type, real.height, real.round, rng.randbytes(32),
                           real.validator, real.signature) if isinstance(real, Vote) else \
                    Proposal(real.height, real.round, rng.randbytes(32), real.valid_round,
                             real.proposer, real.signature)
            self.send(node.index, dst, msg)

    def done(self) -> bool:
        return all(self.sc.target_height in n.decided
                   for n in self.nodes if n.kind == "honest") and not self.pending_restarts

    def run(self) -> SimResult:
        sc = self.sc
        for node in self.nodes:
            if node.kind not in ("silent", "garbage"):
                self.feed(node, NewHeight(1, self.vset))
            self.push(self.rng.randint(1, sc.gossip_interval_ms), "gossip", node.index)
        for c in sc.crashes:
            if c.at_ms is not None:
                self.push(c.at_ms, "crash", c)
        while self.queue and not self.done():
            at, _, kind, payload = heapq.heappop(self.queue)
            if at > sc.max_time_ms:
                break
            self.now = at
            if kind == "deliver":
                self.deliver(*payload)
            elif kind == "timeout":
                i, epoch, t = payload
                if epoch == self.nodes[i].epoch:
                    self.feed(self.nodes[i], t)
            elif kind == "gossip":
                self.gossip(payload)
            elif kind == "restart":
                self.restart(payload)
            elif kind == "crash":
                self.crash(payload)
        honest = [n.index for n in self.nodes if n.kind == "honest"]
        return SimResult(
            scenario=sc, honest=honest, byzantine=dict(sc.byzantine), vset=self.vset,
            decisions={n.index: dict(n.decided) for n in self.nodes},
            height_start={n.index: dict(n.height_start) for n in self.nodes},
            invalid_values=set(self.invalid), evidence=list(self.evidence),
            bad_certificates=list(self.bad_certs), end_time=self.now,
            stabilised_at=self.stabilised_at, dropped_bad_sig=self.dropped_bad_sig,
            double_signs=list(self.double_signs), restarts=self.restarts)


def run(sc: Scenario) -> SimResult:
    return Simulation(sc).run()
