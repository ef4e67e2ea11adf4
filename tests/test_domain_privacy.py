"""Who reads whose records is private: grants, history and receipts per role (REST /v1).

A subject's grants and history are served to the subject, auditors, the parties of each
grant (a grantee sees the grants naming it and their reads) and the custodian center of
the records concerned; anyone else gets 403 ``not_party``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.rpc_auth_env import (
    CENTER,
    CENTER2,
    ENTERPRISE,
    ENTERPRISE2,
    Activity,
    AuthEnv,
    auth_env,
    make_activity,
)

pytestmark = pytest.mark.timeout(300)
HISTORY = f"/v1/subjects/{ENTERPRISE}/history"
RECEIPTS = f"/v1/receipts?subject={ENTERPRISE}"
GRANTS = f"/v1/grants?subject={ENTERPRISE}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthEnv]:
    with auth_env(tmp_path_factory.mktemp("privacy")) as e:
        yield e


@pytest.fixture(scope="module")
def activity(env: AuthEnv) -> Activity:
    return make_activity(env)


def ok(env: AuthEnv, code: str, path: str) -> Any:
    resp = env.get(code, path)
    assert resp.status_code == 200, (code, path, resp.text)
    return resp.json()


def refused(env: AuthEnv, code: str, path: str) -> None:
    resp = env.get(code, path)
    assert resp.status_code == 403, (code, path, resp.text)
    assert resp.json()["error"]["reason"] == "not_party", resp.text


def grant_ids(entries: list[dict[str, Any]]) -> set[int]:
    return {int(e["grant_id"]) for e in entries}


def events(entries: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in entries]


def test_the_subject_and_the_auditor_see_everything(env: AuthEnv, activity: Activity) -> None:
    everything = {activity.to_bank["grant_id"], activity.to_bank_other_type["grant_id"],
                  activity.to_admin["grant_id"]}
    for code in (ENTERPRISE, env.code("auditor")):
        assert grant_ids(ok(env, code, GRANTS)) == everything
        history = ok(env, code, HISTORY)
        assert {"RecordPublished", "Granted", "AccessReceipt"} <= set(events(history))
        assert [r["tx_hash"] for r in ok(env, code, RECEIPTS)] == [activity.read_receipt_tx]
        for g in everything:
            assert ok(env, code, f"/v1/grants/{g}")["grant_id"] == g


def test_a_grantee_sees_only_the_grants_naming_it_and_their_reads(
        env: AuthEnv, activity: Activity) -> None:
    bank = env.code("financial")
    mine = {activity.to_bank["grant_id"], activity.to_bank_other_type["grant_id"]}
    assert grant_ids(ok(env, bank, GRANTS)) == mine
    assert [r["tx_hash"] for r in ok(env, bank, RECEIPTS)] == [activity.read_receipt_tx]
    history = ok(env, bank, HISTORY)
    assert set(events(history)) == {"Granted", "AccessReceipt"}
    assert all(e["args"].get("grantee", bank) == bank for e in history)
    assert ok(env, bank, f"/v1/grants/{activity.to_bank['grant_id']}")["grantee"] == bank
    refused(env, bank, f"/v1/grants/{activity.to_admin['grant_id']}")
    # the admin is a grantee too, of its one grant only, and saw no read
    admin = env.code("admin")
    assert grant_ids(ok(env, admin, GRANTS)) == {activity.to_admin["grant_id"]}
    assert ok(env, admin, RECEIPTS) == []


def test_the_custodian_center_sees_what_concerns_the_records_it_keeps(
        env: AuthEnv, activity: Activity) -> None:
    # CENTER keeps the basic record: it sees its publication, the basic grants and the read,
    # not the qualification grant (it keeps no qualification record of the subject)
    assert grant_ids(ok(env, CENTER, GRANTS)) == {activity.to_bank["grant_id"],
                                                  activity.to_admin["grant_id"]}
    assert [r["tx_hash"] for r in ok(env, CENTER, RECEIPTS)] == [activity.read_receipt_tx]
    assert "RecordPublished" in events(ok(env, CENTER, HISTORY))
    refused(env, CENTER, f"/v1/grants/{activity.to_bank_other_type['grant_id']}")
    assert ok(env, CENTER, f"/v1/grants/{activity.to_bank['grant_id']}")


@pytest.mark.parametrize("who", ["enterprise2", "center2"])
def test_members_that_are_no_party_are_refused(env: AuthEnv, activity: Activity,
                                               who: str) -> None:
    code = ENTERPRISE2 if who == "enterprise2" else CENTER2
    for path in (GRANTS, RECEIPTS, HISTORY, f"/v1/grants/{activity.to_bank['grant_id']}"):
        refused(env, code, path)


def test_refusals_say_who_may_see(env: AuthEnv, activity: Activity) -> None:
    message = env.get(ENTERPRISE2, HISTORY).json()["error"]["message"]
    assert "subject" in message and "auditors" in message and "custodian" in message
