"""End to end: an unmodified web3.py 8 flow against a running node.

Everything here goes through web3.py's public API (or raw JSON-RPC over HTTP/WebSocket where
the point is the wire format): contract deployment, signed transactions, the local signing
middleware, receipts, logs, filters, ``eth_call``, EIP-1186 proofs verified against the
block's state root, WebSocket subscriptions and batches.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
import rlp
from eth_abi import decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from hexbytes import HexBytes
from trie import HexaryTrie
from trie.exceptions import BadTrieProof
from web3 import AsyncWeb3, Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, TransactionNotFound
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.providers.persistent import WebSocketProvider
from web3.types import Nonce, TxData, TxParams, TxReceipt, Wei

from tests.conftest import LocalNetwork
from yilian.contracts.artifacts import load
from yilian.network_configs.local import LOCAL_CHAIN_ID

RECORD_PUT_TOPIC = keccak(b"RecordPut(bytes32,address,bytes32)")
# Vyper lays out storage in declaration order: records (HashMap) at slot 0, writes at 1.
RECORDS_SLOT = 0
WRITES_SLOT = 1
WAIT = 30  # seconds web3 waits for a receipt


def _word(text: str) -> bytes:
    """A distinct bytes32 for each label (so tests never collide on keys)."""
    return keccak(text.encode() + os.urandom(8))


@dataclass
class Env:
    net: LocalNetwork
    w3: Web3
    acct: LocalAccount  # signs explicitly (build_transaction + sign + send_raw)
    contract: Contract
    deploy_receipt: TxReceipt
    deploy_tx_hash: HexBytes


def _send_signed(w3: Web3, acct: LocalAccount, tx: TxParams) -> TxReceipt:
    signed = w3.eth.account.sign_transaction(cast(dict[str, Any], tx), acct.key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    assert tx_hash == HexBytes(signed.hash)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=WAIT, poll_latency=0.05)


@pytest.fixture(scope="module")
def env(network: LocalNetwork) -> Iterator[Env]:
    w3 = Web3(Web3.HTTPProvider(network.rpc, request_kwargs={"timeout": 30}))
    assert w3.is_connected()
    acct: LocalAccount = Account.from_key(network.key(0))
    art = load("RecordStore")
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    # Let web3 fill gas (eth_estimateGas), fees (eth_maxPriorityFeePerGas + base fee) and
    # chainId (eth_chainId) exactly as it would against any Ethereum node.
    tx = factory.constructor().build_transaction(
        {"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address)})
    assert tx["chainId"] == LOCAL_CHAIN_ID
    assert tx["maxFeePerGas"] == 0 and tx["maxPriorityFeePerGas"] == 0
    assert tx["gas"] > 53_000
    signed = w3.eth.account.sign_transaction(tx, acct.key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=WAIT, poll_latency=0.05)
    assert receipt["contractAddress"] is not None
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)
    yield Env(network, w3, acct, contract, receipt, HexBytes(tx_hash))


def _put_raw(e: Env, key: bytes, value: bytes, **overrides: Any) -> TxReceipt:
    params = {"from": e.acct.address,
              "nonce": e.w3.eth.get_transaction_count(e.acct.address, "pending"), **overrides}
    tx = e.contract.functions.put(key, value).build_transaction(cast(TxParams, params))
    return _send_signed(e.w3, e.acct, tx)


def _check_receipt_against_block(w3: Web3, receipt: TxReceipt) -> None:
    """blockHash/number, transactionIndex and cumulativeGasUsed agree with the block."""
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=False)
    assert block["hash"] == receipt["blockHash"]
    assert block["number"] == receipt["blockNumber"]
    assert block["transactions"][receipt["transactionIndex"]] == receipt["transactionHash"]
    block_receipts = [w3.eth.get_transaction_receipt(cast(HexBytes, h))
                      for h in block["transactions"]]
    upto = block_receipts[: receipt["transactionIndex"] + 1]
    assert receipt["cumulativeGasUsed"] == sum(r["gasUsed"] for r in upto)
    assert block_receipts[-1]["cumulativeGasUsed"] == block["gasUsed"]
    assert receipt["effectiveGasPrice"] == 0
    assert receipt["gasUsed"] > 21_000


# -- deployment and transactions ---------------------------------------------------------------


def test_deploy_receipt_and_code(env: Env) -> None:
    w3, r = env.w3, env.deploy_receipt
    assert r["status"] == 1
    assert r["transactionHash"] == env.deploy_tx_hash
    assert r["to"] is None
    assert r["from"] == env.acct.address
    assert r["logs"] == []
    # the address is the CREATE address of (sender, nonce)
    tx = w3.eth.get_transaction(env.deploy_tx_hash)
    expected = Web3.to_checksum_address(
        keccak(rlp.encode([HexBytes(env.acct.address), tx["nonce"]]))[12:])
    assert r["contractAddress"] == expected
    assert w3.eth.get_code(r["contractAddress"]) == HexBytes(load("RecordStore").deployed_bytecode)
    _check_receipt_against_block(w3, r)


def test_predeployed_record_store_address_from_network_json(env: Env) -> None:
    """The RecordStore address ``yilian up`` writes to network.json works in web3 as is.

    web3 (and ethers) reject a mixed-case address whose EIP-55 checksum is wrong.
    """
    address = env.net.info["contracts"]["RecordStore"]
    art = load("RecordStore")
    store = env.w3.eth.contract(address=address, abi=art.abi)
    assert env.w3.eth.get_code(store.address) == HexBytes(art.deployed_bytecode)
    assert store.functions.writes().call() >= 0


def test_put_with_build_transaction_and_send_raw(env: Env) -> None:
    key, value = _word("raw-key"), _word("raw-value")
    r = _put_raw(env, key, value)
    assert r["status"] == 1
    assert r["contractAddress"] is None
    assert r["to"] == env.contract.address
    assert r["from"] == env.acct.address
    assert r["type"] == 2
    _check_receipt_against_block(env.w3, r)
    assert len(r["logs"]) == 1
    entry = r["logs"][0]
    assert entry["address"] == env.contract.address
    assert entry["topics"] == [HexBytes(RECORD_PUT_TOPIC), HexBytes(key),
                               HexBytes(b"\x00" * 12 + HexBytes(env.acct.address))]
    assert entry["data"] == HexBytes(value)
    assert entry["blockHash"] == r["blockHash"]
    assert entry["transactionHash"] == r["transactionHash"]
    assert entry["transactionIndex"] == r["transactionIndex"]
    (event,) = env.contract.events.RecordPut().process_receipt(r)
    assert event["args"] == {"key": key, "writer": env.acct.address, "value": value}
    assert env.contract.functions.get(key).call() == value


def test_receipts_of_puts_sent_in_one_batch(env: Env) -> None:
    """Several puts submitted together (usually one block): per-transaction gasUsed,
    cumulativeGasUsed, transactionIndex and logIndex agree with the blocks."""
    w3, c, acct = env.w3, env.contract, env.acct
    nonce = w3.eth.get_transaction_count(acct.address, "pending")
    raws, hashes = [], []
    for i in range(5):
        tx = c.functions.put(_word(f"multi-{i}"), _word(f"multi-val-{i}")).build_transaction(
            {"from": acct.address, "nonce": Nonce(nonce + i), "gas": 100_000})
        signed = acct.sign_transaction(cast(dict[str, Any], tx))
        raws.append(signed.raw_transaction.to_0x_hex())
        hashes.append(HexBytes(signed.hash))
    resp = httpx.post(env.net.rpc, json=[
        {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}
        for i, raw in enumerate(raws)], timeout=30).json()
    assert [HexBytes(item["result"]) for item in sorted(resp, key=lambda x: x["id"])] == hashes
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=WAIT, poll_latency=0.05)
                for h in hashes]
    for r in receipts:
        assert r["status"] == 1
        _check_receipt_against_block(w3, r)
    # same-sender transactions keep nonce order on chain
    positions = [(r["blockNumber"], r["transactionIndex"]) for r in receipts]
    assert positions == sorted(positions)
    # log indexes are per block, consecutive, in transaction order
    by_block: dict[int, list[int]] = {}
    for r in receipts:
        by_block.setdefault(r["blockNumber"], []).extend(lg["logIndex"] for lg in r["logs"])
    for number, indexes in by_block.items():
        block_logs = w3.eth.get_logs({"fromBlock": number, "toBlock": number})
        assert [lg["logIndex"] for lg in block_logs] == list(range(len(block_logs)))
        assert set(indexes) <= set(range(len(block_logs)))
    block_receipts = w3.eth.get_block_receipts(receipts[0]["blockNumber"])
    assert [dict(r) for r in block_receipts if r["transactionHash"] in hashes] == [
        dict(r) for r in receipts if r["blockNumber"] == receipts[0]["blockNumber"]]


def test_put_through_signing_middleware(env: Env) -> None:
    """web3's local signing middleware turns ``.transact()`` into eth_sendRawTransaction."""
    signer: LocalAccount = Account.from_key(env.net.key(1))
    w3 = Web3(Web3.HTTPProvider(env.net.rpc))
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(signer), layer=0)
    w3.eth.default_account = signer.address
    contract = w3.eth.contract(address=env.contract.address, abi=env.contract.abi)
    key, value = _word("mw-key"), _word("mw-value")
    tx_hash = contract.functions.put(key, value).transact()
    r = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=WAIT, poll_latency=0.05)
    assert r["status"] == 1
    assert r["from"] == signer.address
    assert r["to"] == contract.address
    _check_receipt_against_block(w3, r)
    (event,) = contract.events.RecordPut().process_receipt(r)
    assert event["args"] == {"key": key, "writer": signer.address, "value": value}
    assert contract.functions.get(key).call() == value
    # a value transfer via the middleware as well (no contract involved)
    before = w3.eth.get_balance(env.acct.address)
    tx_hash = w3.eth.send_transaction({"to": env.acct.address, "value": Wei(12345)})
    r2 = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=WAIT, poll_latency=0.05)
    assert r2["status"] == 1 and r2["gasUsed"] == 21_000 and r2["effectiveGasPrice"] == 0
    assert w3.eth.get_balance(env.acct.address) == before + 12345


def test_eth_call_view_and_public_getters(env: Env) -> None:
    key, value = _word("call-key"), _word("call-value")
    assert env.contract.functions.get(key).call() == b"\x00" * 32
    writes_before = env.contract.functions.writes().call()
    r = _put_raw(env, key, value)
    assert env.contract.functions.get(key).call() == value
    assert env.contract.functions.records(key).call() == value
    assert env.contract.functions.writes().call() == writes_before + 1
    # historical state: at the block before the put the key was unset
    assert env.contract.functions.get(key).call(
        block_identifier=r["blockNumber"] - 1) == b"\x00" * 32
    # raw eth_call with the encoded calldata
    data = env.contract.encode_abi("get", args=[key])
    out = env.w3.eth.call({"to": env.contract.address, "data": data}, "latest")
    assert decode(["bytes32"], out) == (value,)


# -- events: get_logs and filters --------------------------------------------------------------


def test_events_get_logs_and_contract_filter(env: Env) -> None:
    w3, c = env.w3, env.contract
    start = w3.eth.block_number + 1
    flt = c.events.RecordPut.create_filter(from_block=start)
    keys = [_word(f"ev-{i}") for i in range(3)]
    receipts = [_put_raw(env, k, _word(f"ev-val-{i}")) for i, k in enumerate(keys)]

    logs = c.events.RecordPut().get_logs(from_block=start)
    assert [ev["args"]["key"] for ev in logs] == keys
    assert [ev["transactionHash"] for ev in logs] == [r["transactionHash"] for r in receipts]
    assert [ev["blockHash"] for ev in logs] == [r["blockHash"] for r in receipts]
    for ev, r in zip(logs, receipts, strict=True):
        assert ev["logIndex"] == r["logs"][0]["logIndex"]
        assert ev["args"]["writer"] == env.acct.address
    # topic filtering through argument_filters (indexed key)
    only = c.events.RecordPut().get_logs(from_block=start,
                                         argument_filters={"key": keys[1]})
    assert [ev["transactionHash"] for ev in only] == [receipts[1]["transactionHash"]]

    entries = flt.get_all_entries()
    assert [ev["args"]["key"] for ev in entries] == keys
    # eth_getFilterChanges: first everything since from_block, then only what is new
    first_poll = flt.get_new_entries()
    assert [ev["transactionHash"] for ev in first_poll] == [r["transactionHash"]
                                                            for r in receipts]
    assert flt.get_new_entries() == []
    late_key = _word("ev-late")
    late = _put_raw(env, late_key, _word("ev-late-value"))
    new = flt.get_new_entries()
    assert [ev["args"]["key"] for ev in new] == [late_key]
    assert new[0]["transactionHash"] == late["transactionHash"]
    assert flt.get_new_entries() == []
    assert [ev["args"]["key"] for ev in flt.get_all_entries()] == [*keys, late_key]
    assert w3.eth.uninstall_filter(flt.filter_id)


# -- EIP-1186 proofs ---------------------------------------------------------------------------


def _hashmap_slot_vyper(slot: int, key: bytes) -> int:
    """Vyper (0.4) HashMap: keccak256(concat(slot as bytes32, key))."""
    return int.from_bytes(keccak(slot.to_bytes(32, "big") + key), "big")


def _hashmap_slot_solidity(slot: int, key: bytes) -> int:
    """Solidity mapping: keccak256(concat(key, slot as bytes32))."""
    return int.from_bytes(keccak(key + slot.to_bytes(32, "big")), "big")


def _get_proof(w3: Web3, address: str, slots: list[int], block: int) -> Any:
    """``w3.eth.get_proof`` (its type stub wants the three arguments as one tuple)."""
    return cast(Any, w3.eth.get_proof)(address, slots, block)


def _int(field: bytes) -> int:
    """An RLP big-endian integer field."""
    return int(rlp.sedes.big_endian_int.deserialize(field))


def test_get_proof_verifies_against_state_root(env: Env) -> None:
    w3, address = env.w3, env.contract.address
    key, value = _word("proof-key"), _word("proof-value")
    r = _put_raw(env, key, value)
    number = r["blockNumber"]

    # Find the slot of records[key] empirically. Vyper 0.4 uses keccak(slot ++ key) (the
    # reverse of Solidity's keccak(key ++ slot)); assert that, so a layout change is loud.
    vyper_slot = _hashmap_slot_vyper(RECORDS_SLOT, key)
    solidity_slot = _hashmap_slot_solidity(RECORDS_SLOT, key)
    assert w3.eth.get_storage_at(address, vyper_slot, number) == HexBytes(value)
    assert w3.eth.get_storage_at(address, solidity_slot, number) == HexBytes(b"\x00" * 32)
    unset_slot = _hashmap_slot_vyper(RECORDS_SLOT, _word("never-written"))
    slots = [vyper_slot, WRITES_SLOT, unset_slot]

    proof = _get_proof(w3, address, slots, number)
    block = w3.eth.get_block(number)
    state_root = bytes(block["stateRoot"])

    # account proof -> account RLP under keccak(address) in the state trie
    account_rlp = HexaryTrie.get_from_proof(
        state_root, keccak(HexBytes(address)), [rlp.decode(n) for n in proof["accountProof"]])
    assert account_rlp, "account missing from the state trie"
    nonce, balance, storage_root, code_hash = rlp.decode(account_rlp)
    assert _int(nonce) == proof["nonce"] == w3.eth.get_transaction_count(address, number)
    assert _int(balance) == proof["balance"] == w3.eth.get_balance(address, number)
    assert bytes(storage_root) == bytes(proof["storageHash"])
    assert bytes(code_hash) == bytes(proof["codeHash"]) == keccak(w3.eth.get_code(address, number))
    assert proof["nonce"] == 1  # EIP-161: contracts start at nonce 1

    assert len(proof["storageProof"]) == len(slots)
    for slot, sp in zip(slots, proof["storageProof"], strict=True):
        assert int.from_bytes(sp["key"], "big") == slot
        raw = HexaryTrie.get_from_proof(bytes(storage_root), keccak(slot.to_bytes(32, "big")),
                                        [rlp.decode(n) for n in sp["proof"]])
        proven = rlp.decode(raw, sedes=rlp.sedes.big_endian_int) if raw else 0
        claimed = int.from_bytes(sp["value"], "big")
        stored = int.from_bytes(w3.eth.get_storage_at(address, slot, number), "big")
        assert proven == claimed == stored, hex(slot)
    values = [int.from_bytes(sp["value"], "big") for sp in proof["storageProof"]]
    assert values[0] == int.from_bytes(value, "big")
    assert values[1] == env.contract.functions.writes().call(block_identifier=number) > 0
    assert values[2] == 0  # proof of absence

    # the proof is bound to this state root: another block's root does not verify it
    older = bytes(w3.eth.get_block(number - 1)["stateRoot"])
    assert older != state_root
    with pytest.raises(BadTrieProof):
        HexaryTrie.get_from_proof(older, keccak(HexBytes(address)),
                                  [rlp.decode(n) for n in proof["accountProof"]])

    # an externally owned account: empty storage, empty code
    eoa = _get_proof(w3, env.acct.address, [], number)
    eoa_rlp = HexaryTrie.get_from_proof(state_root, keccak(HexBytes(env.acct.address)),
                                        [rlp.decode(n) for n in eoa["accountProof"]])
    e_nonce, e_balance, e_root, e_code = rlp.decode(eoa_rlp)
    assert _int(e_nonce) == eoa["nonce"] == w3.eth.get_transaction_count(env.acct.address,
                                                                         number)
    assert _int(e_balance) == eoa["balance"] == w3.eth.get_balance(env.acct.address, number)
    assert bytes(e_code) == keccak(b"") == bytes(eoa["codeHash"])
    assert bytes(e_root) == bytes(eoa["storageHash"]) == HexaryTrie.BLANK_NODE_HASH


# -- WebSocket subscriptions -------------------------------------------------------------------


async def _subscriptions_flow(e: Env, use_text_frames: bool) -> dict[str, Any]:
    key, value = _word("ws-key"), _word("ws-value")
    provider = WebSocketProvider(e.net.ws, use_text_frames=use_text_frames)
    async with AsyncWeb3(provider) as w3:
        assert await w3.eth.chain_id == LOCAL_CHAIN_ID
        heads_id = await w3.eth.subscribe("newHeads")
        logs_id = await w3.eth.subscribe("logs", {"address": e.contract.address})
        assert heads_id != logs_id
        nonce = await w3.eth.get_transaction_count(e.acct.address, "pending")
        tx = e.contract.functions.put(key, value).build_transaction(
            {"from": e.acct.address, "nonce": nonce})
        signed = e.acct.sign_transaction(cast(dict[str, Any], tx))
        tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
        heads: list[Any] = []
        logs: list[Any] = []
        receipt: Any = None
        async for msg in w3.socket.process_subscriptions():
            sub, result = msg["subscription"], msg["result"]
            (heads if sub == heads_id else logs).append(result)
            if receipt is None and logs:
                receipt = await w3.eth.get_transaction_receipt(tx_hash)
            if receipt is not None and logs and any(
                    h["hash"] == receipt["blockHash"] for h in heads):
                break
        assert await w3.eth.unsubscribe(heads_id)
        assert await w3.eth.unsubscribe(logs_id)
    return {"key": key, "value": value, "tx_hash": tx_hash, "heads": heads, "logs": logs,
            "receipt": receipt}


@pytest.mark.parametrize("frames", ["binary", "text"])
def test_websocket_subscriptions_newheads_and_logs(env: Env, frames: str) -> None:
    """``eth_subscribe`` newHeads + logs through web3's AsyncWeb3(WebSocketProvider).

    web3.py 8 sends its requests as *binary* WebSocket frames unless told otherwise
    (``use_text_frames=False`` is its default); geth and other nodes accept both.
    """
    flow = _subscriptions_flow(env, use_text_frames=frames == "text")
    out = asyncio.run(asyncio.wait_for(flow, timeout=60))
    w3, receipt = env.w3, out["receipt"]
    assert receipt["status"] == 1
    # every head notified is the committed block with that number, in order
    numbers = [h["number"] for h in out["heads"]]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    for head in out["heads"]:
        block = w3.eth.get_block(head["number"])
        assert head["hash"] == block["hash"]
        assert head["parentHash"] == block["parentHash"]
        assert head["stateRoot"] == block["stateRoot"]
    assert out["heads"][-1]["hash"] == receipt["blockHash"]
    # the log notification is exactly the receipt's log
    (entry,) = out["logs"]
    expected = receipt["logs"][0]
    for field in ("address", "topics", "data", "blockHash", "blockNumber", "transactionHash",
                  "transactionIndex", "logIndex"):
        assert entry[field] == expected[field], field
    assert entry["transactionHash"] == HexBytes(out["tx_hash"])
    assert entry["topics"][1] == HexBytes(out["key"])
    assert entry["data"] == HexBytes(out["value"])
    assert entry["removed"] is False


# -- other JSON-RPC methods ---------------------------------------------------------------------


def test_transaction_and_block_lookups(env: Env) -> None:
    w3 = env.w3
    key, value = _word("lookup-key"), _word("lookup-value")
    r = _put_raw(env, key, value)
    tx = w3.eth.get_transaction(r["transactionHash"])
    assert tx["hash"] == r["transactionHash"]
    assert tx["blockHash"] == r["blockHash"]
    assert tx["blockNumber"] == r["blockNumber"]
    assert tx["transactionIndex"] == r["transactionIndex"]
    assert tx["from"] == env.acct.address
    assert tx["to"] == env.contract.address
    assert tx["type"] == 2
    assert tx["chainId"] == LOCAL_CHAIN_ID
    assert tx["maxFeePerGas"] == 0 and tx["maxPriorityFeePerGas"] == 0 and tx["gasPrice"] == 0
    assert tx["input"] == HexBytes(env.contract.encode_abi("put", args=[key, value]))

    block = w3.eth.get_block(r["blockHash"], full_transactions=True)
    assert block["hash"] == r["blockHash"]
    assert block["number"] == r["blockNumber"]
    assert block["baseFeePerGas"] == 0
    assert w3.eth.get_block(block["number"] - 1)["hash"] == block["parentHash"]
    full = cast(TxData, block["transactions"][r["transactionIndex"]])
    assert dict(full) == dict(tx)
    by_number = w3.eth.get_block(r["blockNumber"], full_transactions=False)
    assert by_number["transactions"] == [cast(TxData, t)["hash"]
                                          for t in block["transactions"]]
    assert w3.eth.get_transaction_by_block(r["blockHash"], r["transactionIndex"]) == tx
    assert w3.eth.get_block_transaction_count(r["blockNumber"]) == len(block["transactions"])
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction(HexBytes(b"\x01" * 32))
    with pytest.raises(BlockNotFound):
        w3.eth.get_block(w3.eth.block_number + 1000)


def test_transaction_count_latest_vs_pending(env: Env) -> None:
    """A transaction stuck behind a nonce gap is pending; it shows in the mempool, not in
    either nonce, until the gap is filled and both commit."""
    w3, acct, c = env.w3, env.acct, env.contract
    latest = w3.eth.get_transaction_count(acct.address, "latest")
    assert w3.eth.get_transaction_count(acct.address, "pending") == latest
    gap_key, gap_value = _word("gap"), _word("gap-value")
    gapped = c.functions.put(gap_key, gap_value).build_transaction(
        {"from": acct.address, "nonce": Nonce(latest + 1)})
    gapped_signed = acct.sign_transaction(cast(dict[str, Any], gapped))
    gapped_hash = w3.eth.send_raw_transaction(gapped_signed.raw_transaction)
    pending_tx = w3.eth.get_transaction(gapped_hash)
    assert pending_tx["blockHash"] is None and pending_tx["blockNumber"] is None
    assert pending_tx["nonce"] == latest + 1
    assert w3.eth.get_transaction_count(acct.address, "latest") == latest
    assert w3.eth.get_transaction_count(acct.address, "pending") == latest  # gap not skipped
    # filling the gap: both go through; "pending" now counts both, before or after commit
    first = c.functions.put(_word("fill"), _word("fill-value")).build_transaction(
        {"from": acct.address, "nonce": Nonce(latest)})
    first_hash = w3.eth.send_raw_transaction(
        acct.sign_transaction(cast(dict[str, Any], first)).raw_transaction)
    pending_now = w3.eth.get_transaction_count(acct.address, "pending")
    latest_now = w3.eth.get_transaction_count(acct.address, "latest")
    assert pending_now == latest + 2
    assert latest <= latest_now <= pending_now
    r1 = w3.eth.wait_for_transaction_receipt(first_hash, timeout=WAIT, poll_latency=0.05)
    r2 = w3.eth.wait_for_transaction_receipt(gapped_hash, timeout=WAIT, poll_latency=0.05)
    assert r1["status"] == r2["status"] == 1
    assert (r1["blockNumber"], r1["transactionIndex"]) < (r2["blockNumber"],
                                                          r2["transactionIndex"])
    assert w3.eth.get_transaction_count(acct.address, "latest") == latest + 2
    assert w3.eth.get_transaction_count(acct.address, "pending") == latest + 2
    assert c.functions.get(gap_key).call() == gap_value


def test_estimate_gas_and_fee_methods(env: Env) -> None:
    w3, c, acct = env.w3, env.contract, env.acct
    key, value = _word("est-key"), _word("est-value")
    estimate = c.functions.put(key, value).estimate_gas({"from": acct.address})
    assert estimate > 21_000
    raw_estimate = w3.eth.estimate_gas({"from": acct.address, "to": c.address,
                                        "data": c.encode_abi("put", args=[key, value])})
    assert raw_estimate == estimate
    # a transaction given exactly the estimate succeeds and uses no more than it
    r = _put_raw(env, key, value, gas=estimate)
    assert r["status"] == 1
    assert r["gasUsed"] <= estimate
    assert w3.eth.gas_price == 0
    assert w3.eth.max_priority_fee == 0
    assert w3.eth.get_block("latest")["baseFeePerGas"] == 0
    history = w3.eth.fee_history(4, "latest", [50.0])
    assert all(f == 0 for f in history["baseFeePerGas"])


def test_net_and_client_identity(env: Env) -> None:
    w3 = env.w3
    assert w3.net.version == str(LOCAL_CHAIN_ID)
    assert w3.eth.chain_id == LOCAL_CHAIN_ID
    version = w3.client_version
    assert version.startswith("yilian/") and "py-evm" in version
    assert w3.is_connected()


def test_json_rpc_batch_over_raw_http(env: Env) -> None:
    key, value = _word("batch-key"), _word("batch-value")
    r = _put_raw(env, key, value)
    data = env.contract.encode_abi("get", args=[key])
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "eth_getTransactionReceipt",
         "params": [r["transactionHash"].to_0x_hex()]},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_call",
         "params": [{"to": env.contract.address, "data": data}, "latest"]},
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},  # notification
        {"jsonrpc": "2.0", "id": 4, "method": "no_such_method", "params": []},
        {"jsonrpc": "2.0", "id": 5, "method": "eth_getBlockByNumber",
         "params": [hex(r["blockNumber"]), False]},
        {"jsonrpc": "2.0", "id": 6, "method": "net_version"},
    ]
    resp = httpx.post(env.net.rpc, json=batch, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    out = {item["id"]: item for item in resp.json()}
    assert set(out) == {1, "two", 3, 4, 5, 6}  # no response to the notification
    assert all(item["jsonrpc"] == "2.0" for item in out.values())
    assert out[1]["result"] == hex(LOCAL_CHAIN_ID)
    receipt = out["two"]["result"]
    assert receipt["transactionHash"] == r["transactionHash"].to_0x_hex()
    assert receipt["status"] == "0x1"
    assert receipt["blockHash"] == r["blockHash"].to_0x_hex()
    assert receipt["effectiveGasPrice"] == "0x0"
    assert out[3]["result"] == "0x" + value.hex()
    assert out[4]["error"]["code"] == -32601
    assert out[5]["result"]["hash"] == r["blockHash"].to_0x_hex()
    assert out[6]["result"] == str(LOCAL_CHAIN_ID)
    # a batch of notifications only gets no body at all
    empty = httpx.post(env.net.rpc, json=[{"jsonrpc": "2.0", "method": "eth_chainId"}],
                       timeout=30)
    assert empty.status_code in (200, 204) and not empty.content
