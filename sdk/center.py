"""What a trading center's systems call: publish a record through the center's own node."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from yilian.protocol import standard
from yilian.protocol.publication import PublishedPublic
from yilian.sdk.client import Client


@dataclass(frozen=True)
class PublishedRecord(PublishedPublic):
    """The node's answer (:class:`yilian.protocol.publication.PublishedPublic`) and the
    client id it was published under ("" for a removal)."""

    client_id: str


class Center:
    """A center's staff account connected to the center's own node."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def publish_record(self, rtype: standard.RecordType | int | str, subject: str,
                       payload: dict[str, Any], *, client_id: str | None = None,
                       owner: str | None = None, version: int | None = None,
                       retries: int = 3) -> PublishedRecord:
        """Validate, then publish (encrypted by the node) one record about ``subject``.

        Raises :class:`~yilian.protocol.standard.RecordInvalid` naming every bad field
        before anything is sent. ``client_id`` names the record for idempotent retries:
        resending the same ``client_id`` (and ``version``) never creates a duplicate, so a
        network failure is retried up to ``retries`` times with the same id.
        """
        kind = standard.RecordType.parse(rtype)
        standard.validate_record(kind, payload, subject=subject)
        cid = client_id or uuid.uuid4().hex
        body: dict[str, Any] = {"type": kind.label, "subject": subject, "payload": payload,
                                "client_id": cid}
        if owner is not None:
            body["owner"] = owner
        if version is not None:
            body["version"] = version
        for attempt in range(retries + 1):
            try:
                out = self.client.post_when_free("/v1/records", body)
                break
            except (requests.ConnectionError, requests.Timeout):
                if attempt == retries:
                    raise
                time.sleep(0.5 * (attempt + 1))
        return PublishedRecord(client_id=cid, **out)

    def remove_record(self, record_id: str, *, version: int | None = None) -> PublishedRecord:
        """Tombstone a record this center provides: a new version marks it removed; the
        earlier versions stay on chain for audit. Give ``version`` (latest + 1) to make a
        retry idempotent."""
        body: dict[str, Any] = {} if version is None else {"version": version}
        out = self.client.post_when_free(f"/v1/records/{record_id}/remove", body)
        return PublishedRecord(client_id="", **out)
