"""What an auditor calls: a subject's full history, each entry checked against the chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yilian.contracts.abi import contract_abi
from yilian.contracts.addresses import GRANTS_ADDRESS, MEMBERS_ADDRESS, RECORDS_ADDRESS
from yilian.sdk.client import Client
from yilian.sdk.errors import YilianError

CONTRACTS = {"Members": MEMBERS_ADDRESS, "Records": RECORDS_ADDRESS, "Grants": GRANTS_ADDRESS}


@dataclass(frozen=True)
class HistoryEntry:
    event: str
    contract: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    timestamp: int
    args: dict[str, Any]


class Auditor:
    def __init__(self, client: Client) -> None:
        self.client = client

    def history(self, subject: str, *, verify: bool = True) -> list[HistoryEntry]:
        """Every record version, removal, grant, revocation and access receipt about
        ``subject``, oldest first.

        With ``verify`` each entry is checked over JSON-RPC: its transaction's receipt
        must be in the named block, succeed and hold a log at the named index from the
        named contract with the named event. (The block itself is final: its commit
        certificate is served by ``yilian_getCommitCertificate``.)
        """
        entries = [HistoryEntry(**e) for e in self.client.get(f"/v1/subjects/{subject}/history")]
        if verify:
            for e in entries:
                self._verify(e)
        return entries

    def _verify(self, e: HistoryEntry) -> None:
        receipt = self.client.rpc("eth_getTransactionReceipt", e.tx_hash)
        if receipt is None or receipt["blockHash"] != e.block_hash or receipt["status"] != "0x1":
            raise YilianError(f"history entry {e.event} in tx {e.tx_hash} is not on chain as "
                              "reported")
        logs = {int(log["logIndex"], 16): log for log in receipt["logs"]}
        log = logs.get(e.log_index)
        address = CONTRACTS.get(e.contract)
        if (log is None or address is None or log["address"].lower() != address.lower()
                or bytes.fromhex(log["topics"][0][2:]) != contract_abi(e.contract).topic(e.event)):
            raise YilianError(f"history entry {e.event}: log {e.log_index} of {e.tx_hash} is "
                              f"not a {e.contract}.{e.event} event of the consortium contracts")
