"""The SDK sends a center operation again while the node says too many calls wait."""

from __future__ import annotations

from typing import Any

import pytest

from tests import test_domain_api as domain
from tests.test_domain_api import ENTERPRISE, Env, bank, plaintext_of
from yilian.protocol import standard
from yilian.sdk import client as sdk_client
from yilian.sdk.center import Center
from yilian.sdk.client import Client
from yilian.sdk.enterprise import Enterprise
from yilian.sdk.errors import Refused

env = domain.env
published = domain.published

BUSY = Refused(429, "too_many_waiting", "8 calls waiting")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def _bare_client(answers: list[Any]) -> tuple[Client, list[Any]]:
    calls: list[Any] = []
    c = Client.__new__(Client)

    def post(path: str, body: Any, *, signed: bool = True, audience: str | None = None) -> Any:
        calls.append((path, body, audience))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    c.post = post  # type: ignore[method-assign]
    return c, calls


def test_busy_answers_are_waited_out_then_the_same_request_goes_through(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(sdk_client.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(sdk_client.time, "sleep", clock.sleep)
    c, calls = _bare_client([BUSY, Refused(503, "waiting_full", "512"), BUSY, {"ok": 1}])
    assert c.post_when_free("/v1/x", {"a": 1}, audience="aud") == {"ok": 1}
    assert calls == [("/v1/x", {"a": 1}, "aud")] * 4
    assert len(clock.slept) == 3 and clock.slept[0] < clock.slept[2]  # pauses grow


def test_other_refusals_and_the_deadline_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(sdk_client.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(sdk_client.time, "sleep", clock.sleep)
    c, calls = _bare_client([Refused(422, "not_covered", "no")])
    with pytest.raises(Refused, match="not_covered"):
        c.post_when_free("/v1/x", {})
    assert len(calls) == 1
    c, calls = _bare_client([BUSY] * 100)
    with pytest.raises(Refused, match="too_many_waiting"):
        c.post_when_free("/v1/x", {}, wait_s=10)
    assert clock.now <= 10 and 5 < len(calls) < 100


def _busy_once(client: Client) -> list[str]:
    """Make ``client``'s next post answer too_many_waiting, then behave normally."""
    real, seen = client.post, []

    def post(path: str, body: Any, **kw: Any) -> Any:
        seen.append(path)
        if len(seen) == 1:
            raise BUSY
        return real(path, body, **kw)

    client.post = post  # type: ignore[method-assign]
    return seen


def test_publish_and_read_go_through_a_busy_answer(env: Env, published: domain.Published
                                                   ) -> None:
    center = Center(env.sdk(env.center_key))
    seen = _busy_once(center.client)
    out = center.publish_record("qualification", ENTERPRISE,
                                standard.example_record("qualification", ENTERPRISE),
                                owner="subject", client_id="busy-once")
    assert seen == ["/v1/records", "/v1/records"] and out.version == 1
    grant = Enterprise(env.member_sdk(ENTERPRISE), ENTERPRISE).grant(
        env.member("financial")["id"], types=["basic"], purpose="busy", max_reads=1,
        valid_for_s=600)
    reader = bank(env)
    seen = _busy_once(reader.client)
    result = reader.read(published.record_id, int(grant["grant_id"]))
    assert result.plaintext == plaintext_of(published)
    assert len([p for p in seen if p.endswith("/key")]) == 2  # one read spent, sent twice
