"""Batched key release (``POST /v1/keys``, node/key_batches.py, ``Grantee.read_many``) over
the in-process REST API (the node and helpers of ``test_domain_api``):

* one request for N records of one custodian releases N keys under ONE receipt
  transaction (one AccessReceipt per record) and spends N reads;
* per batch, a retry with the same request id (in any item order) gets the same keys under
  the same receipts and spends nothing; the id reused for another set of reads is refused;
* a bad item refuses the whole batch, naming the item, and spends nothing; so does a
  batch needing more reads than its grant has left;
* a model test drives random batches, retries, id reuse and revocation against the model
  of the rules and checks every answer, the reads spent and the receipts on chain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_domain_api import (
    CENTER,
    ENTERPRISE,
    Env,
    assert_refused,
    bank,
    enterprise,
    running_env,
)

from yilian.api.routes.keys import _custodian_of, keys_answer
from yilian.contracts.addresses import MAX_ACCESS_ITEMS, max_access_items
from yilian.node.domain import RecordMeta
from yilian.node.key_batches import batch_id, item_request_id
from yilian.node.key_types import KeyItem
from yilian.protocol import envelope, standard
from yilian.protocol.credit_code import to_bytes32
from yilian.sdk.center import Center
from yilian.sdk.errors import Refused
from yilian.sdk.grantee import verify_and_open

pytestmark = pytest.mark.timeout(300)

BASIC = 4  # records of type basic the grants cover
IDS = itertools.count(1)


@dataclass
class Records:
    ids: list[str]  # BASIC basic records, then one credit record
    plaintexts: dict[str, bytes] = field(default_factory=dict)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running_env(tmp_path_factory.mktemp("key-batches")) as out:
        yield out


@pytest.fixture(scope="module")
def records(env: Env) -> Records:
    center = Center(env.sdk(env.center_key))
    out = Records([])
    for i, kind in enumerate(["basic"] * BASIC + ["credit"]):
        payload = standard.example_record(kind, ENTERPRISE)
        if kind == "basic":
            payload = {**payload, "legal_representative": f"张伟{i}"}
        pub = center.publish_record(kind, ENTERPRISE, payload, owner="subject",
                                    client_id=f"batch-{kind}-{i}")
        out.ids.append(pub.record_id)
        out.plaintexts[pub.record_id] = standard.canonical_bytes(kind, payload,
                                                                 subject=ENTERPRISE)
    return out


def new_grant(env: Env, max_reads: int) -> int:
    grant = enterprise(env).grant(env.member("financial")["id"], types=["basic"],
                                  purpose="batch reads", max_reads=max_reads, valid_for_s=600)
    return int(grant["grant_id"])


def ask(env: Env, items: list[tuple[str, int]], request_id: str | None,
        key: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"items": [{"record_id": r, "grant_id": g, "version": 1}
                                      for r, g in items]}
    if request_id is not None:
        body["request_id"] = request_id
    return env.call(key or env.member("financial")["privateKey"], "POST", "/v1/keys", body)


def reads_of(env: Env, grant_id: int) -> int:
    grant = env.node.domain.grant(grant_id)
    assert grant is not None
    return int(grant["reads"])


def receipts_of(env: Env, grant_id: int) -> list[dict[str, Any]]:
    return [dict(e.event.args) for e in env.node.domain.history(to_bytes32(ENTERPRISE))
            if e.event.event == "AccessReceipt" and e.event.args["grant_id"] == grant_id]


def opened(env: Env, key: dict[str, Any]) -> bytes:
    """The plaintext the released key opens (checked against the on-chain digest)."""
    grantee = bank(env)
    doc = grantee.version_doc(key["record_id"], key["version"])
    assert grantee.client.enc_private_key is not None
    data_key = envelope.unwrap_key(env.node.genesis.suite,
                                   bytes(grantee.client.enc_private_key),
                                   bytes.fromhex(key["wrapped_key"][2:]))
    return verify_and_open(env.node.genesis.suite, doc, data_key)[2]


def fresh_id() -> str:
    return "0x" + next(IDS).to_bytes(32, "big").hex()


# -- the batch ------------------------------------------------------------------------------


def test_a_batch_releases_every_key_under_one_receipt_transaction(
        env: Env, records: Records) -> None:
    grant = new_grant(env, max_reads=10)
    basics = records.ids[:BASIC]
    out = bank(env).read_many([(r, grant) for r in basics])
    assert [r.record_id for r in out] == basics
    assert [r.plaintext for r in out] == [records.plaintexts[r] for r in basics]
    assert len({r.receipt_tx for r in out}) == 1 and out[0].receipt_tx is not None
    assert reads_of(env, grant) == BASIC
    receipts = receipts_of(env, grant)
    assert sorted("0x" + bytes(r["record_id"]).hex() for r in receipts) == sorted(basics)
    assert len({bytes(r["request_id"]) for r in receipts}) == BASIC


def test_a_retry_in_any_order_gets_the_same_keys_and_spends_nothing(
        env: Env, records: Records) -> None:
    grant = new_grant(env, max_reads=10)
    basics = records.ids[:3]
    rid = fresh_id()
    first = ask(env, [(r, grant) for r in basics], rid)
    assert first.status_code == 200, first.text
    again = ask(env, [(r, grant) for r in reversed(basics)], rid)  # freshly signed
    assert again.status_code == 200, again.text
    by_record = {k["record_id"]: k for k in again.json()["keys"]}
    assert [k["record_id"] for k in again.json()["keys"]] == list(reversed(basics))
    for key in first.json()["keys"]:
        assert by_record[key["record_id"]]["receipt_tx"] == key["receipt_tx"]
        assert opened(env, by_record[key["record_id"]]) == opened(env, key) == \
            records.plaintexts[key["record_id"]]
    assert reads_of(env, grant) == 3
    # The same id naming another set of reads: a subset, a superset, another record.
    for other in (basics[:2], basics[1:], [*basics, records.ids[3]],
                  [*basics[:2], records.ids[3]]):
        assert_refused(ask(env, [(r, grant) for r in other], rid), 409, "request_id_used")
    assert reads_of(env, grant) == 3


def test_identical_batches_at_once_spend_once(env: Env, records: Records) -> None:
    grant = new_grant(env, max_reads=10)
    rid = fresh_id()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: ask(env, [(r, grant) for r in records.ids[:2]], rid),
                                range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.json()["keys"][0]["receipt_tx"] for a in answers}) == 1
    assert reads_of(env, grant) == 2


def test_a_bad_item_refuses_the_batch_naming_it(env: Env, records: Records) -> None:
    grant = new_grant(env, max_reads=3)
    basics, credit = records.ids[:BASIC], records.ids[BASIC]
    err = assert_refused(ask(env, [(basics[0], grant), (credit, grant)], fresh_id()),
                         403, "not_covered")
    assert (err["item"], err["record_id"]) == (1, credit)
    body = {"items": [{"record_id": basics[0], "grant_id": grant, "version": 9}]}
    err = assert_refused(env.call(env.member("financial")["privateKey"], "POST", "/v1/keys",
                                  body), 404, "version_not_found")
    assert err["item"] == 0
    # 4 items on a grant with 3 reads: refused up front, nothing spent.
    err = assert_refused(ask(env, [(r, grant) for r in basics], fresh_id()), 403,
                         "grant_exhausted")
    assert err["item"] == 3
    assert reads_of(env, grant) == 0
    assert receipts_of(env, grant) == []


def test_the_shape_of_a_batch_is_checked(env: Env, records: Records) -> None:
    grant = new_grant(env, max_reads=3)
    rid = records.ids[0]
    assert_refused(ask(env, [(rid, grant), (rid, grant)], None), 422, "duplicate_item")
    many = [("0x" + i.to_bytes(32, "big").hex(), grant) for i in range(MAX_ACCESS_ITEMS + 1)]
    assert_refused(ask(env, many, None), 422, "invalid_request")
    assert_refused(ask(env, [], None), 422, "invalid_request")
    err = assert_refused(ask(env, [(rid, grant), ("0x" + "11" * 32, grant)], None), 404,
                         "record_not_found")
    assert err["item"] == 1
    with pytest.raises(Refused) as refused:  # the SDK says which read, too
        bank(env).read_many([(rid, grant), (records.ids[BASIC], grant)])
    assert refused.value.reason == "not_covered" and refused.value.details["read"] == 1
    assert reads_of(env, grant) == 0


def test_a_network_whose_tx_gas_cap_fits_fewer_receipts_takes_smaller_batches(
        env: Env, records: Records) -> None:
    assert max_access_items(3_000_000) == MAX_ACCESS_ITEMS
    assert max_access_items(200_000) == 2 and max_access_items(100_000) == 0
    grant = new_grant(env, max_reads=5)
    service = env.node.key_service
    genesis = service.genesis
    small = dataclasses.replace(genesis, params=dataclasses.replace(genesis.params,
                                                                    max_tx_gas=200_000))
    with mock.patch.object(service, "genesis", small):
        err = assert_refused(ask(env, [(r, grant) for r in records.ids[:3]], fresh_id()),
                             422, "too_many_items")
        assert err["limit"] == 2 and "200000" in err["message"]
        assert ask(env, [(r, grant) for r in records.ids[:2]], fresh_id()).status_code == 200
    assert reads_of(env, grant) == 2


def test_a_batch_that_loses_a_race_for_the_last_reads_says_so(
        env: Env, records: Records) -> None:
    """Two batches for the grant's last 2 reads at once: one is served; the other is refused
    as exhausted (naming an item) even when both landed in one block, where the replayed
    revert reason names none."""
    grant = new_grant(env, max_reads=2)
    pairs = [records.ids[0:2], records.ids[2:4]]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda rs: ask(env, [(r, grant) for r in rs], fresh_id()),
                                pairs))
    assert sorted(a.status_code for a in answers) == [200, 403], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 403)
    assert assert_refused(loser, 403, "grant_exhausted")["item"] in (0, 1)
    assert reads_of(env, grant) == 2


def test_a_center_reads_its_own_and_granted_records_in_one_batch(
        env: Env, records: Records) -> None:
    """Owner items need no receipt and take no rank: a retry naming only the granted
    record is the same batch."""
    own = Center(env.sdk(env.center_key)).publish_record(
        "basic", ENTERPRISE, standard.example_record("basic", ENTERPRISE), owner="center",
        client_id="batch-center-owned")
    grant = enterprise(env).grant(CENTER, types=["basic"], purpose="center batch",
                                  max_reads=3, valid_for_s=600)["grant_id"]
    rid = fresh_id()
    mixed = ask(env, [(own.record_id, 0), (records.ids[0], grant)], rid, key=env.center_key)
    assert mixed.status_code == 200, mixed.text
    first, second = mixed.json()["keys"]
    assert first["receipt_tx"] is None and second["receipt_tx"] is not None
    again = ask(env, [(records.ids[0], grant)], rid, key=env.center_key)
    assert again.status_code == 200, again.text
    assert again.json()["keys"][0]["receipt_tx"] == second["receipt_tx"]
    assert reads_of(env, grant) == 1


def test_read_many_again_with_its_request_id_spends_nothing(
        env: Env, records: Records) -> None:
    grant = new_grant(env, max_reads=3)
    reads = [(r, grant) for r in records.ids[:3]]
    first = bank(env).read_many(reads, request_id="0x" + "77" * 32)
    again = bank(env).read_many(reads, request_id="0x" + "77" * 32)
    assert [r.receipt_tx for r in again] == [r.receipt_tx for r in first]
    assert [r.plaintext for r in again] == [records.plaintexts[r] for r in records.ids[:3]]
    assert reads_of(env, grant) == 3


def test_a_request_holding_another_enc_key_is_refused_before_a_read_is_spent(
        env: Env, records: Records) -> None:
    """A key request names the encryption key its caller holds; the custodian refuses it
    unless that is the member's registered key, single and batched, spending nothing."""
    grant = new_grant(env, max_reads=2)
    bank_key = env.member("financial")["privateKey"]
    other = "0x" + envelope.enc_public_key(
        env.node.genesis.suite, envelope.generate_enc_keypair(env.node.genesis.suite).private
    ).hex()
    single = env.call(bank_key, "POST", f"/v1/records/{records.ids[0]}/key",
                      {"grant_id": grant, "version": 1, "enc_key": other})
    assert other in assert_refused(single, 409, "wrong_enc_key")["message"]
    body = {"items": [{"record_id": records.ids[0], "grant_id": grant, "version": 1}],
            "enc_key": other}
    assert_refused(env.call(bank_key, "POST", "/v1/keys", body), 409, "wrong_enc_key")
    assert reads_of(env, grant) == 0
    body["enc_key"] = env.member("financial")["encPublicKey"]
    assert env.call(bank_key, "POST", "/v1/keys", body).status_code == 200
    assert reads_of(env, grant) == 1


def test_the_latest_version_is_served_by_name(env: Env, records: Records) -> None:
    """``GET /v1/records/{id}/versions/latest`` (what ``Grantee.read`` asks for when no
    version is given) is the latest version's document; an unknown record is 404."""
    key = env.member("auditor")["privateKey"]
    rid = records.ids[0]
    latest = env.call(key, "GET", f"/v1/records/{rid}/versions/latest")
    assert latest.status_code == 200, latest.text
    assert latest.json() == env.call(key, "GET", f"/v1/records/{rid}/versions/1").json()
    assert_refused(env.call(key, "GET", "/v1/records/0x" + "11" * 32 + "/versions/latest"),
                   404, "record_not_found")
    assert_refused(env.call(key, "GET", f"/v1/records/{rid}/versions/newest"), 422,
                   "invalid_request")


def test_the_owner_reads_its_own_records_in_a_batch_without_receipts(
        env: Env, records: Records) -> None:
    owner_key = env.by_code(ENTERPRISE)["privateKey"]
    resp = ask(env, [(r, 0) for r in records.ids[:2]], fresh_id(), key=owner_key)
    assert resp.status_code == 200, resp.text
    assert [k["receipt_tx"] for k in resp.json()["keys"]] == [None, None]


def test_concurrent_single_reads_share_one_receipt_transaction(
        env: Env, records: Records) -> None:
    """The custodian records the receipts of single reads that arrive together in one
    transaction (node/receipt_batcher.py): each read still has its own receipt and
    request id, and spends one read."""
    grant = new_grant(env, max_reads=4)
    service = env.node.key_service
    bank_account = bytes.fromhex(env.member("financial")["account"][2:])

    async def read_all() -> list[Any]:
        return list(await asyncio.gather(*(
            service.release_key(bank_account, "00" * 16, bytes.fromhex(r[2:]), grant, 1,
                                fresh_id().encode())
            for r in records.ids[:BASIC])))

    out = asyncio.run(read_all())
    assert len({k.receipt_tx for k in out}) == 1 and out[0].receipt_tx is not None
    assert reads_of(env, grant) == BASIC
    assert len({bytes(r["request_id"]) for r in receipts_of(env, grant)}) == BASIC


def test_a_desk_account_may_wait_for_many_key_requests(env: Env, records: Records) -> None:
    """Key requests, single and batched, take the operator's per-account bound (a bank's
    desk serves many users through one account), not the lower one of user-signed
    transactions (test_waiting_api checks that one)."""
    budget = env.http.app.state.waits
    saved = budget.per_account, budget.per_operator
    account = bytes.fromhex(env.member("financial")["account"][2:])
    grant = new_grant(env, max_reads=5)
    budget.per_account, budget.per_operator = 1, 2
    try:
        with budget.slot(account, None, operator=True):  # the desk waits for one call
            single = env.call(env.member("financial")["privateKey"], "POST",
                              f"/v1/records/{records.ids[0]}/key",
                              {"grant_id": grant, "version": 1})
            assert single.status_code == 200, single.text
            assert ask(env, [(records.ids[1], grant)], fresh_id()).status_code == 200
            with budget.slot(account, None, operator=True):  # a second: the bound is hit
                err = assert_refused(ask(env, [(records.ids[2], grant)], fresh_id()), 429,
                                     "too_many_waiting")
                assert err["limit"] == 2
    finally:
        budget.per_account, budget.per_operator = saved
    assert reads_of(env, grant) == 2


def test_a_batch_needs_the_records_one_custodian() -> None:
    a, b = to_bytes32(ENTERPRISE), to_bytes32("9144030071526726XG")
    items = [KeyItem(bytes([i]) * 32, 1) for i in range(2)]

    def meta(center: bytes) -> RecordMeta:
        return RecordMeta(b"\x01" * 32, 1, a, center, a, 1, False)

    assert _custodian_of([meta(a), meta(a)], items) == a
    with pytest.raises(Exception, match="different custodians") as exc:
        _custodian_of([meta(a), meta(b)], items)
    assert getattr(exc.value, "reason", None) == "mixed_custodians"


def test_a_forwarding_node_passes_on_only_the_keys_asked_for() -> None:
    items = [KeyItem(b"\x01" * 32, 1, 1), KeyItem(b"\x02" * 32, 1, None)]

    def key(rid: bytes, version: int = 1, **extra: Any) -> dict[str, Any]:
        return {"record_id": "0x" + rid.hex(), "version": version, "wrapped_key": "0x00",
                "receipt_tx": None, "receipt_block_number": None,
                "receipt_block_hash": None, **extra}

    def answer(keys: list[dict[str, Any]], **extra: Any) -> bytes:
        return json.dumps({"custodian": "c1", "keys": keys, **extra}).encode()

    good = [key(b"\x01" * 32), key(b"\x02" * 32, 7)]
    assert keys_answer(200, answer(good), items) is not None
    assert keys_answer(200, answer(good[::-1]), items) is None  # out of order
    assert keys_answer(200, answer(good[:1]), items) is None  # a key missing
    assert keys_answer(200, answer([key(b"\x01" * 32, 2), good[1]]), items) is None
    assert keys_answer(200, answer(good, extra=1), items) is None
    assert keys_answer(200, answer([good[0], key(b"\x02" * 32, x=1)]), items) is None
    refusal = {"error": {"reason": "not_covered", "message": "no", "item": 1, "extra": 2}}
    assert keys_answer(403, json.dumps(refusal).encode(), items) == (
        403, {"error": {"reason": "not_covered", "message": "no", "item": 1}})
    assert keys_answer(302, b"", items) is None


def test_item_ids_are_per_batch_and_rank() -> None:
    b1, b2 = batch_id(b"\x01" * 20, b"r"), batch_id(b"\x02" * 20, b"r")
    ids = {item_request_id(b, k) for b in (b1, b2) for k in range(MAX_ACCESS_ITEMS + 1)}
    assert len(ids) == 2 * (MAX_ACCESS_ITEMS + 1)


# -- the model ------------------------------------------------------------------------------

def _model_refusal(wanted: list[str], uncovered: str, left: int) -> tuple[str, int] | None:
    """Why a new batch is refused, and which item: items in request order, each checked as
    ``Grants.check`` does (reads left before coverage), then against the reads the items
    before it take."""
    for i, record in enumerate(wanted):
        if left <= 0:
            return "grant_exhausted", i
        if record == uncovered:
            return "not_covered", i
        if i + 1 > left:
            return "grant_exhausted", i
    return None


read_op = st.tuples(st.just("read"), st.integers(0, 2),
                    st.lists(st.integers(0, BASIC), min_size=1, max_size=BASIC + 1,
                             unique=True))
ops = st.tuples(st.lists(read_op, min_size=1, max_size=7), st.integers(0, 10)).map(
    lambda t: [*t[0][:t[1]], ("revoke",), *t[0][t[1]:]])  # revoked at some step, or never


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(max_reads=st.integers(1, 6), steps=ops)
def test_batches_follow_the_rules_of_the_model(env: Env, records: Records, max_reads: int,
                                                 steps: list[tuple[Any, ...]]) -> None:
    """Random batches (item index BASIC is the credit record the grant does not cover),
    retries and reuses of 3 request ids, and a revocation: every answer is the model's,
    reads spent equal receipts on chain, one receipt per item id, and every released key
    opens its record."""
    grant = new_grant(env, max_reads)
    slots = [fresh_id() for _ in range(3)]
    served: dict[int, tuple[frozenset[str], dict[str, str]]] = {}
    spent, revoked = 0, False
    for step in steps:
        if step[0] == "revoke":
            if not revoked:
                enterprise(env).revoke(grant)
                revoked = True
            continue
        _, slot, picks = step
        wanted = [records.ids[i] for i in picks]
        resp = ask(env, [(r, grant) for r in wanted], slots[slot])
        if slot in served and frozenset(wanted) != served[slot][0]:
            assert_refused(resp, 409, "request_id_used")
        elif revoked:
            assert_refused(resp, 403, "grant_revoked")
        elif slot in served:
            assert resp.status_code == 200, resp.text
            receipts = {k["record_id"]: k["receipt_tx"] for k in resp.json()["keys"]}
            assert receipts == served[slot][1]
            event("a retry got its keys again")
        elif (refusal := _model_refusal(wanted, records.ids[BASIC], max_reads - spent)):
            err = assert_refused(resp, 403, refusal[0])
            assert err["item"] == refusal[1]
        else:
            assert resp.status_code == 200, resp.text
            keys = resp.json()["keys"]
            assert [k["record_id"] for k in keys] == wanted
            assert len({k["receipt_tx"] for k in keys}) == 1
            served[slot] = (frozenset(wanted), {k["record_id"]: k["receipt_tx"] for k in keys})
            spent += len(wanted)
        event(f"answer {resp.status_code} "
              f"{resp.json()['error']['reason'] if resp.status_code != 200 else 'keys'}")
        if resp.status_code == 200:
            for key in resp.json()["keys"]:
                assert opened(env, key) == records.plaintexts[key["record_id"]]
        assert reads_of(env, grant) == spent
    receipts = receipts_of(env, grant)
    assert len(receipts) == spent
    assert len({bytes(r["request_id"]) for r in receipts}) == spent
