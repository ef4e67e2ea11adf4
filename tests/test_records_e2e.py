"""Shared records end to end on a local 4-center network, through the SDK (issue 4).

One network (real node processes on 127.0.0.1) serves the whole module; the tests run in
order and build on each other:

* center A publishes one record of each of the seven types about an enterprise;
* a bank reads them through center B's node under the enterprise's grant and gets exactly
  the plaintext A published; revocation, expiry and the last allowed use each stop reads,
  with the reason;
* an auditor sees every version and every read (access receipt) in the subject's history,
  each entry checked against the chain;
* center C, holding no grant, finds no plaintext in its own LevelDB and gets no key;
* tampering, invalid records, bad credit codes, wrong roles and replayed requests are
  refused with the reason; a custodian that is down gives ``custodian_unavailable``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import plyvel
import pytest
import requests

from tests.consortium_helpers import Cluster, running_cluster, wait_for
from yilian.contracts.addresses import RECORDS_ADDRESS
from yilian.protocol import envelope, standard
from yilian.protocol.credit_code import is_valid, to_bytes32
from yilian.protocol.record_ids import record_id_for
from yilian.protocol.signed_request import sign_request
from yilian.sdk.auditor import Auditor
from yilian.sdk.center import Center
from yilian.sdk.client import Client
from yilian.sdk.enterprise import Enterprise
from yilian.sdk.errors import CustodianUnavailable, Refused, TamperedError, YilianError
from yilian.sdk.grantee import Grantee, verify_and_open

pytestmark = pytest.mark.timeout(600)

ENTERPRISE = "914403001922038216"
A, B, C, D = 0, 1, 2, 3
ALL_TYPES = list(standard.RecordType)


@dataclass
class Net:
    cluster: Cluster
    members: dict[str, dict[str, Any]]  # by role name / id
    published: dict[standard.RecordType, Any] = field(default_factory=dict)
    payloads: dict[standard.RecordType, dict[str, Any]] = field(default_factory=dict)
    reads: int = 0  # successful grant-checked reads so far

    def api(self, i: int) -> str:
        return str(self.cluster.info["nodes"][i]["api"])

    def center_key(self, i: int) -> str:
        return "0x" + (self.cluster.home(i) / "account_key").read_text().strip()

    def center_code(self, i: int) -> str:
        return str(self.cluster.info["nodes"][i]["center"]["id"])

    def member(self, role: str, index: int = 0) -> dict[str, Any]:
        return [m for m in self.cluster.info["members"] if m["role"] == role][index]

    def client(self, i: int, member: dict[str, Any]) -> Client:
        return Client(self.api(i), member["privateKey"], enc_private_key=member["encPrivateKey"])


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with running_cluster(tmp_path_factory.mktemp("records")) as cluster:
        yield Net(cluster, {})


def bank(net: Net, node: int = B) -> Grantee:
    return Grantee(net.client(node, net.member("financial")))


def enterprise(net: Net) -> Enterprise:
    m = net.member("enterprise")
    assert m["id"] == ENTERPRISE
    return Enterprise(net.client(B, m), ENTERPRISE)


def test_center_a_publishes_all_seven_types(net: Net) -> None:
    center = Center(Client(net.api(A), net.center_key(A)))
    for rtype in ALL_TYPES:
        payload = standard.example_record(rtype, ENTERPRISE)
        out = center.publish_record(rtype, ENTERPRISE, payload, owner="subject",
                                    client_id=f"e2e-{rtype.label}")
        assert out.version == 1 and not out.already_published
        net.published[rtype] = out
        net.payloads[rtype] = payload
    # A retry with the same client id names the same record and adds nothing.
    again = center.publish_record(ALL_TYPES[0], ENTERPRISE, net.payloads[ALL_TYPES[0]],
                                  owner="subject", client_id="e2e-basic")
    assert again.already_published and again.record_id == net.published[ALL_TYPES[0]].record_id
    assert again.version == 1


def test_bank_reads_all_seven_through_center_b(net: Net) -> None:
    grant = enterprise(net).grant(net.member("financial")["id"], types=ALL_TYPES,
                                  purpose="电子保函 bid guarantee credit check", max_reads=100,
                                  valid_for_s=3600)
    desk = bank(net, B)
    for rtype in ALL_TYPES:
        out = desk.read(net.published[rtype].record_id, grant["grant_id"])
        assert out.plaintext == standard.canonical_bytes(rtype, net.payloads[rtype],
                                                         subject=ENTERPRISE)
        assert out.data == standard.validate_record(rtype, net.payloads[rtype])
        assert out.rtype == rtype and out.version == 1 and out.receipt_tx
        net.reads += 1
    # All seven in one key request, forwarded by B to A: one receipt transaction.
    many = desk.read_many([(net.published[t].record_id, grant["grant_id"]) for t in ALL_TYPES])
    assert [o.plaintext for o in many] == [
        standard.canonical_bytes(t, net.payloads[t], subject=ENTERPRISE) for t in ALL_TYPES]
    assert len({o.receipt_tx for o in many}) == 1 and many[0].receipt_tx
    net.reads += len(ALL_TYPES)


def test_revoked_grant_stops_reads(net: Net) -> None:
    ent = enterprise(net)
    grant = ent.grant(net.member("financial")["id"], types=["credit"], purpose="revocation",
                      max_reads=10, valid_for_s=3600)
    desk = bank(net, B)
    record = net.published[standard.RecordType.CREDIT].record_id
    desk.read(record, grant["grant_id"])
    net.reads += 1
    revoked = ent.revoke(grant["grant_id"])
    assert revoked["revoked"] is True
    with pytest.raises(Refused) as err:
        desk.read(record, grant["grant_id"])
    assert err.value.reason == "grant_revoked", err.value


def test_expired_grant_stops_reads(net: Net) -> None:
    grant = enterprise(net).grant(net.member("financial")["id"], types=["project"],
                                  purpose="expiry", max_reads=10, valid_for_s=3)
    time.sleep(4.5)
    with pytest.raises(Refused) as err:
        bank(net, B).read(net.published[standard.RecordType.PROJECT].record_id,
                          grant["grant_id"])
    assert err.value.reason == "grant_expired", err.value


def test_last_allowed_use_stops_reads(net: Net) -> None:
    grant = enterprise(net).grant(net.member("financial")["id"], types=["personnel"],
                                  purpose="one read", max_reads=1, valid_for_s=3600)
    desk = bank(net, C)  # through yet another node
    record = net.published[standard.RecordType.PERSONNEL].record_id
    desk.read(record, grant["grant_id"])
    net.reads += 1
    with pytest.raises(Refused) as err:
        desk.read(record, grant["grant_id"])
    assert err.value.reason == "grant_exhausted", err.value


def test_update_keeps_versions_and_auditor_sees_everything(net: Net) -> None:
    center = Center(Client(net.api(A), net.center_key(A)))
    rtype = standard.RecordType.QUALIFICATION
    payload = dict(net.payloads[rtype])
    payload["level"] = "甲级 Grade A (renewed)"
    v2 = center.publish_record(rtype, ENTERPRISE, payload, owner="subject",
                               client_id=f"e2e-{rtype.label}", version=2)
    assert v2.version == 2 and v2.record_id == net.published[rtype].record_id
    history = Auditor(net.client(D, net.member("auditor"))).history(ENTERPRISE)
    published = [(e.args["record_id"], e.args["version"]) for e in history
                 if e.event == "RecordPublished"]
    for rtype_ in ALL_TYPES:
        assert (net.published[rtype_].record_id, 1) in published
    assert (v2.record_id, 2) in published
    receipts = [e for e in history if e.event == "AccessReceipt"]
    assert len(receipts) == net.reads
    bank_id = net.member("financial")["id"]
    assert all(e.args["reader"] == bank_id for e in receipts)
    assert {e.args["record_id"] for e in receipts} >= {
        net.published[t].record_id for t in ALL_TYPES}
    assert any(e.event == "Revoked" for e in history)
    assert sum(e.event == "Granted" for e in history) >= 4
    # every entry names a block that every node has, with the same hash
    for e in history[:3]:
        block = net.cluster.rpc(A, "eth_getBlockByNumber", [hex(e.block_number), False])
        assert block["hash"] == e.block_hash


def _plaintext_fragments(net: Net) -> list[bytes]:
    genesis = (net.cluster.home(C) / "genesis.json").read_bytes()
    frags: list[bytes] = []
    for rtype, payload in net.payloads.items():
        frags.append(standard.canonical_bytes(rtype, payload, subject=ENTERPRISE))
        stack: list[Any] = [payload]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, str) and len(item.encode()) >= 8 and not is_valid(item):
                # (credit codes are public registry ids: a record's subject is an indexed
                # event topic by design; everything else in a record is private)
                raw = item.encode()
                if raw not in genesis and raw.decode() not in json.dumps(
                        json.loads(genesis), ensure_ascii=False):
                    frags.append(raw)
    return frags


def test_center_c_has_no_plaintext_and_gets_no_key(net: Net) -> None:
    c_client = Client(net.api(C), net.center_key(C))
    record = net.published[standard.RecordType.PERSONNEL].record_id
    for grant_id in (0, 1):
        with pytest.raises(Refused) as err:
            c_client.post(f"/v1/records/{record}/key", {"grant_id": grant_id},
                          audience=net.center_code(A))
        assert err.value.reason in ("not_grantee", "grant_not_found"), err.value
    frags = _plaintext_fragments(net)
    assert len(frags) > 20
    # positive control: the records' ciphertexts did replicate to C, and the scan finds them
    ciphertexts = [bytes.fromhex(bank(net, C).version_doc(net.published[t].record_id, 1)[
        "ciphertext"][2:]) for t in ALL_TYPES]
    net.cluster.stop_node(C)
    try:
        found = []
        db = plyvel.DB(str(net.cluster.home(C) / "data" / "leveldb"))
        try:
            seen_ct: set[bytes] = set()
            for key, value in db.iterator():
                blob = bytes(key) + b"\x00" + bytes(value)
                found += [f for f in frags if f in blob]
                seen_ct.update(ct for ct in ciphertexts if ct in blob)
            assert len(seen_ct) == len(ciphertexts), "the scan did not see the ciphertexts"
        finally:
            db.close()
        for path in (net.cluster.home(C) / "data").rglob("*"):
            if path.is_file():
                raw = path.read_bytes()
                found += [f for f in frags if f in raw]
        assert not found, f"plaintext found in center C's database: {found[:3]}"
    finally:
        net.cluster.start_node(C)


def test_tampering_is_detected(net: Net) -> None:
    desk = bank(net, B)
    rtype = standard.RecordType.BASIC
    record = net.published[rtype].record_id
    grant = enterprise(net).grant(net.member("financial")["id"], types=[rtype],
                                  purpose="tamper check", max_reads=5, valid_for_s=3600)
    doc = desk.version_doc(record, 1)
    key = desk.client.post(f"/v1/records/{record}/key", {"grant_id": grant["grant_id"],
                                                         "version": 1},
                           audience=net.center_code(A))
    net.reads += 1
    data_key = envelope.unwrap_key(desk.client.suite, bytes(desk.client.enc_private_key or b""),
                                   bytes.fromhex(key["wrapped_key"][2:]))
    verify_and_open(desk.client.suite, doc, data_key)  # untouched: fine
    ct = bytearray(bytes.fromhex(doc["ciphertext"][2:]))
    ct[len(ct) // 2] ^= 0x01
    with pytest.raises(TamperedError, match="digest"):
        verify_and_open(desk.client.suite, {**doc, "ciphertext": "0x" + ct.hex()}, data_key)
    with pytest.raises(TamperedError, match="digest"):
        verify_and_open(desk.client.suite, {**doc, "digest": "0x" + "11" * 32}, data_key)
    # ciphertext and digests altered consistently: the AEAD tag still catches it
    forged_digest = "0x" + envelope.digest(desk.client.suite, bytes(ct)).hex()
    with pytest.raises(TamperedError):
        verify_and_open(desk.client.suite, {**doc, "ciphertext": "0x" + ct.hex(),
                                            "digest": forged_digest,
                                            "event_digest": forged_digest}, data_key)
    # the right ciphertext presented as another record version fails the binding
    with pytest.raises(TamperedError):
        verify_and_open(desk.client.suite, {**doc, "version": 2}, data_key)
    # a publication whose digest does not match its ciphertext never enters the mempool
    a = Client(net.api(A), net.center_key(A))
    rid = record_id_for(to_bytes32(net.center_code(A)), "bad-digest")
    bad = a.sign_call("Records", RECORDS_ADDRESS, "publish", rid, 1, 1,
                      to_bytes32(ENTERPRISE), to_bytes32(net.center_code(A)), 1,
                      b"\x11" * 32, b"ciphertext", b"")
    resp = requests.post(f"{net.api(A)}/rpc", json={"jsonrpc": "2.0", "id": 1,
                                                    "method": "eth_sendRawTransaction",
                                                    "params": [bad]}, timeout=30).json()
    assert resp["error"]["data"]["reason"] == "digest_mismatch", resp


def test_invalid_records_and_codes_are_rejected(net: Net) -> None:
    a = Client(net.api(A), net.center_key(A))
    payload = dict(standard.example_record("basic", ENTERPRISE))
    payload["region_code"] = "12345X"
    payload["registered_capital"] = "-5"
    with pytest.raises(standard.RecordInvalid) as err:
        Center(a).publish_record("basic", ENTERPRISE, payload)
    fields = {e.field for e in err.value.errors}
    assert {"region_code", "registered_capital"} <= fields, fields
    # the node refuses it too (a client that skips the SDK's check)
    with pytest.raises(Refused) as refused:
        a.post("/v1/records", {"type": "basic", "subject": ENTERPRISE, "payload": payload,
                               "client_id": "bad-1"})
    assert refused.value.reason == "invalid_record"
    assert {f["field"] for f in refused.value.details["fields"]} >= {"region_code",
                                                                      "registered_capital"}
    wrong = ENTERPRISE[:-1] + ("7" if ENTERPRISE[-1] != "7" else "8")
    with pytest.raises(Refused) as refused:
        a.post("/v1/records", {"type": "credit", "subject": wrong,
                               "payload": standard.example_record("credit", ENTERPRISE),
                               "client_id": "bad-2"})
    assert refused.value.reason == "invalid_record"
    assert "check character" in refused.value.message
    with pytest.raises(Refused) as refused:
        a.get("/v1/records", subject=wrong)
    assert refused.value.reason == "invalid_credit_code"


def test_roles_and_replay_are_enforced(net: Net) -> None:
    bank_member = net.member("financial")
    bank_client = net.client(B, bank_member)
    raw = bank_client.sign_call("Records", RECORDS_ADDRESS, "publish", b"\x43" * 32, 1, 1,
                                to_bytes32(ENTERPRISE), to_bytes32(ENTERPRISE), 1,
                                b"\x11" * 32, b"x", b"")
    resp = requests.post(f"{net.api(B)}/rpc", json={"jsonrpc": "2.0", "id": 1,
                                                    "method": "eth_sendRawTransaction",
                                                    "params": [raw]}, timeout=30).json()
    assert resp["error"]["data"]["reason"] == "role", resp
    assert "center" in resp["error"]["message"]
    # a bank cannot publish through REST either
    with pytest.raises(Refused) as err:
        bank_client.post("/v1/records", {"type": "basic", "subject": ENTERPRISE,
                                         "payload": standard.example_record("basic", ENTERPRISE),
                                         "client_id": "bank"})
    assert err.value.status == 403
    # a signed request is good once
    path = f"/v1/members/{ENTERPRISE}"
    headers = sign_request(bank_member["privateKey"], chain_id=bank_client.chain_id,
                           audience=net.center_code(B), method="GET", path=path).as_dict()
    first = requests.get(net.api(B) + path, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    second = requests.get(net.api(B) + path, headers=headers, timeout=30)
    assert second.status_code == 401 and second.json()["error"]["reason"] == "replayed"
    # ... and not even once at another node: it names B (each node keeps its own nonces)
    elsewhere = requests.get(net.api(C) + path, headers=headers, timeout=30)
    assert elsewhere.status_code == 401, elsewhere.text
    assert elsewhere.json()["error"]["reason"] == "wrong_audience"
    unsigned = requests.get(net.api(B) + path, timeout=30)
    assert unsigned.status_code == 401


def test_custodian_down_is_reported(net: Net) -> None:
    grant = enterprise(net).grant(net.member("financial")["id"], types=["supervision"],
                                  purpose="custodian down", max_reads=5, valid_for_s=3600)
    record = net.published[standard.RecordType.SUPERVISION].record_id
    net.cluster.stop_node(A)
    try:
        with pytest.raises(CustodianUnavailable) as err:
            bank(net, B).read(record, grant["grant_id"])
        assert "custodian" in err.value.message
        # the owner still reads its own record: its key is wrapped for it on chain
        owner = Grantee(net.client(C, net.member("enterprise")))
        own = owner.read_own(net.published[standard.RecordType.PERSONNEL].record_id)
        assert own.plaintext == standard.canonical_bytes(
            standard.RecordType.PERSONNEL, net.payloads[standard.RecordType.PERSONNEL],
            subject=ENTERPRISE)
        assert own.receipt_tx is None
        with pytest.raises(YilianError, match="not an account of the record's owner"):
            bank(net, C).read_own(record)
    finally:
        net.cluster.start_node(A)
    wait_for(lambda: net.cluster.have_peers(range(4), 3), 60, "A reconnected",
             net.cluster.describe)
    out = bank(net, B).read(record, grant["grant_id"])  # back: reads work again
    assert out.rtype == standard.RecordType.SUPERVISION
