"""Admission: the one path by which a transaction enters the mempool, and every rule it meets.

JSON-RPC, REST, peer gossip and the mempool-journal replay after a restart all call
``Ledger.admit``, which runs :func:`check_transaction` and then hands the transaction to the
mempool. The rules, in the order they are applied (each refusal is a :class:`Rejected`
whose ``reason`` tag is stable and whose message says what to do):

1. encoding (:func:`decode_transaction`): at most ``max_tx_bytes``; a legacy (EIP-155
   protected), EIP-2930, EIP-1559 or EIP-7702 transaction for this chain id with a valid
   low-``s`` signature; blob transactions are refused (this chain carries no blobs);
2. the rules the EVM applies to a transaction on its own (:func:`validate_transaction`,
   after ethereum/execution-specs' Prague ``validate_transaction``): gas limit at least the
   intrinsic gas *including* the EIP-3860 initcode word cost and at least the EIP-7623
   calldata floor; at most the network's per-transaction cap ``maxTxGas``; nonce below
   2**64 - 1; a creation's initcode at most 49,152 bytes (EIP-3860); priority fee not
   above the fee cap. A block build applies the same function again, so a transaction
   admitted under older rules is dropped with a reason, never executed;
3. the sender (:func:`check_sender`): an active member's account in the Members registry
   at the head block; a suspended member's account only to revoke its own grants; an
   account of no member only if genesis lists it in ``authorisedSenders`` (operator
   accounts). Without the domain contracts, ``authorisedSenders`` alone decides (an empty
   list admits anyone: development chains);
4. the domain rules (``Domain.check_admission``): which role may call which contract
   function, record ids and digests;
5. the sender's account at the head: no code other than an EIP-7702 delegation (EIP-3607),
   balance covering ``value + gas * maxFeePerGas`` (fees are zero here: only the value);
6. the pool's own rules (``Mempool.admit``): not already pending or committed, nonce not
   below the sender's next nonce and at most ``max_nonce_gap`` ahead of it, replacement
   only without a lower fee cap, at most ``max_size`` transactions and ``max_per_sender``
   per sender.

Rules the EVM applies only while executing (a created contract's code over 24,576 bytes,
running out of gas, reverts) make the transaction fail *inside* its block, like on
Ethereum; they cannot be known beforehand. Everything here reads the head block's state;
the head view caches per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import rlp
from eth.abc import SignedTransactionAPI
from eth.vm.forks.prague.constants import (
    SET_CODE_TRANSACTION_TYPE,
    STANDARD_TOKEN_COST,
    TOTAL_COST_FLOOR_PER_TOKEN,
)
from eth.vm.forks.shanghai.constants import INITCODE_WORD_COST, MAX_INITCODE_SIZE
from eth_utils import ValidationError, to_checksum_address

from yilian.node.genesis import YilianVM

CREATE = b""  # ``to`` of a contract creation
GAS_TX = 21_000
NONCE_LIMIT = 2**64 - 1  # EIP-2681: a nonce must stay below it
DELEGATION_PREFIX = b"\xef\x01\x00"  # EIP-7702 delegation designation
_SECP256K1_HALF_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2


class Rejected(Exception):
    """A transaction was not admitted. ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class AccountView:
    nonce: int
    balance: int
    code: bytes = b""


@dataclass(frozen=True)
class Standing:
    """What the Members registry says about an account: the member it acts for (zero
    bytes: none) and that member's role (0 when the member is suspended)."""

    member: bytes
    role: int

    @property
    def is_member(self) -> bool:
        return any(self.member)


@dataclass(frozen=True)
class TxRules:
    """The network's stateless limits (from genesis and the node's mempool config)."""

    chain_id: int
    max_tx_bytes: int
    max_tx_gas: int
    operators: frozenset[bytes]  # genesis ``authorisedSenders``


class HeadView(Protocol):
    """The head block's state as admission needs it (implementations cache per block)."""

    def account(self, address: bytes) -> AccountView: ...

    def standing(self, address: bytes) -> Standing | None:
        """None when this network has no member registry."""

    def check_call(self, tx: SignedTransactionAPI) -> None:
        """Raise :class:`Rejected` if the domain rules refuse ``tx``."""

    def may_act_suspended(self, tx: SignedTransactionAPI) -> bool:
        """True if ``tx`` is one a suspended member may still send (revoking a grant)."""


def decode_transaction(raw: bytes, *, chain_id: int, max_bytes: int) -> SignedTransactionAPI:
    """Rule 1: decode and authenticate a raw transaction; raise :class:`Rejected` otherwise."""
    if len(raw) > max_bytes:
        raise Rejected("oversized", f"transaction is {len(raw)} bytes; the limit is {max_bytes}")
    if not raw:
        raise Rejected("invalid_encoding", "empty transaction")
    if raw[0] == 3:
        raise Rejected("unsupported_type", "blob (type 3) transactions are not supported here")
    try:
        tx = YilianVM.get_transaction_builder().decode(raw)
    except (rlp.DecodingError, rlp.DeserializationError, ValidationError, ValueError,
            TypeError, IndexError) as exc:
        raise Rejected("invalid_encoding",
                       f"not a valid signed transaction encoding: {exc}") from exc
    except Exception as exc:  # py-evm raises assorted errors on garbage input
        raise Rejected("invalid_encoding",
                       f"not a valid signed transaction encoding: {exc}") from exc
    tx_chain_id = tx.chain_id
    if tx_chain_id is None:
        raise Rejected("unprotected",
                       "legacy transaction without EIP-155 replay protection; sign with "
                       f"chain id {chain_id}")
    if tx_chain_id != chain_id:
        raise Rejected("wrong_chain",
                       f"transaction is for chain id {tx_chain_id}; this network is {chain_id}")
    if not 0 < tx.s <= _SECP256K1_HALF_N:
        # EIP-2, which py-evm enforces for legacy transactions only: without it every
        # signed transaction has a second valid encoding with another hash.
        raise Rejected("invalid_signature",
                       "invalid transaction signature: s must be in the lower half of the "
                       "curve order (EIP-2)")
    try:
        # Recovering the sender is the signature check: py-evm's check_signature_validity()
        # would recover the same public key a second time and then verify the signature
        # against it, which cannot fail once recovery succeeded.
        _ = tx.sender
    except Exception as exc:
        raise Rejected("invalid_signature", f"invalid transaction signature: {exc}") from exc
    try:
        tx.validate()
    except ValidationError as exc:
        raise Rejected("invalid_transaction", f"invalid transaction: {exc}") from exc
    return tx


def decode(raw: bytes, rules: TxRules) -> SignedTransactionAPI:
    """Rule 1 under ``rules``: :func:`decode_transaction` with their chain id and size."""
    return decode_transaction(raw, chain_id=rules.chain_id, max_bytes=rules.max_tx_bytes)


def intrinsic_gas(tx: SignedTransactionAPI) -> int:
    """Gas charged before execution: py-evm's intrinsic gas (base, calldata, access list,
    authorisations, creation) plus the EIP-3860 initcode word cost, which py-evm charges
    at the start of execution instead (execution-specs counts it as intrinsic)."""
    gas = int(tx.intrinsic_gas)
    if tx.to == CREATE:
        gas += INITCODE_WORD_COST * ((len(tx.data) + 31) // 32)
    return gas


def calldata_floor_gas(tx: SignedTransactionAPI) -> int:
    """EIP-7623 (Prague): the least gas a transaction is charged for its calldata."""
    zeros = tx.data.count(0)
    tokens = zeros + (len(tx.data) - zeros) * STANDARD_TOKEN_COST
    return GAS_TX + TOTAL_COST_FLOOR_PER_TOKEN * tokens


def validate_transaction(tx: SignedTransactionAPI, max_tx_gas: int) -> None:
    """Rule 2: what makes a transaction invalid on its own, whatever the state.

    The same checks as execution-specs' Prague ``validate_transaction`` plus this network's
    per-transaction gas cap. Used by admission and again by the block builder and by
    proposal validation, so no block ever executes a transaction that breaks them.
    """
    need = max(intrinsic_gas(tx), calldata_floor_gas(tx))
    if tx.gas < need:
        raise Rejected("intrinsic_gas",
                       f"gas limit {tx.gas} is below the {need} gas this transaction costs "
                       "before executing (intrinsic gas incl. initcode, or the EIP-7623 "
                       "calldata floor); raise the gas limit")
    if tx.gas > max_tx_gas:
        raise Rejected("gas_limit",
                       f"gas limit {tx.gas} exceeds this network's per-transaction cap "
                       f"{max_tx_gas} (genesis params.maxTxGas); split the work into "
                       "smaller transactions")
    if tx.nonce >= NONCE_LIMIT:
        raise Rejected("nonce_too_high", f"nonce {tx.nonce} is not below 2**64 - 1 (EIP-2681)")
    if tx.to == CREATE and len(tx.data) > MAX_INITCODE_SIZE:
        raise Rejected("initcode_size",
                       f"contract creation with {len(tx.data)} bytes of initcode; the limit is "
                       f"{MAX_INITCODE_SIZE} (EIP-3860)")
    if tx.type_id == SET_CODE_TRANSACTION_TYPE and not tx.authorization_list:
        raise Rejected("invalid_transaction", "a set-code (type 4) transaction needs at "
                       "least one authorisation (EIP-7702)")
    if int(tx.max_priority_fee_per_gas) > int(tx.max_fee_per_gas):
        raise Rejected("invalid_transaction",
                       "max priority fee per gas is above max fee per gas")


def check_sender(tx: SignedTransactionAPI, standing: Standing | None,
                 operators: frozenset[bytes], suspended_ok: bool) -> None:
    """Rule 3: may this account send at all? (see the module docstring)."""
    sender = bytes(tx.sender)
    if standing is None:  # no member registry on this network
        if operators and sender not in operators:
            raise Rejected("unauthorised",
                           f"sender {to_checksum_address(sender)} is not a registered account "
                           "of this network; ask the consortium admin to register it")
        return
    if standing.is_member:
        if standing.role == 0 and not suspended_ok:
            raise Rejected("suspended",
                           f"sender {to_checksum_address(sender)} acts for member "
                           f"{standing.member.rstrip(bytes(1)).decode('ascii', 'replace')}, "
                           "whose membership is suspended; it may only revoke its grants "
                           "until the consortium admin reactivates it")
        return
    if sender not in operators:
        raise Rejected("unauthorised",
                       f"sender {to_checksum_address(sender)} is not a registered account "
                       "of any member (Members registry at the head block) nor an operator "
                       "account; ask the consortium admin to register it")


def check_account(tx: SignedTransactionAPI, account: AccountView) -> None:
    """Rule 5: the sender's account can pay and is not a contract."""
    sender = to_checksum_address(bytes(tx.sender))
    if account.code and not account.code.startswith(DELEGATION_PREFIX):
        raise Rejected("sender_not_eoa", f"sender {sender} is a contract; contracts cannot "
                       "send transactions (EIP-3607)")
    cost = tx.value + tx.gas * int(tx.max_fee_per_gas)
    if cost > account.balance:
        raise Rejected("insufficient_funds",
                       f"insufficient funds: {sender} has {account.balance} wei, the "
                       f"transaction needs up to {cost}")


def check_transaction(raw: bytes, rules: TxRules, head: HeadView,
                      decoded: SignedTransactionAPI | None = None) -> SignedTransactionAPI:
    """Rules 1-5 for a raw transaction at the head block; return it decoded.

    ``decoded`` is ``raw`` already decoded under ``rules`` (rule 1), by a caller that had
    to look inside it first; it is not decoded (nor its sender recovered) again.
    Rule 6 (the pool's) follows in ``Mempool.admit``, under the pool's lock.
    """
    tx = decoded if decoded is not None else decode(raw, rules)
    validate_transaction(tx, rules.max_tx_gas)
    sender = bytes(tx.sender)
    check_sender(tx, head.standing(sender), rules.operators, head.may_act_suspended(tx))
    head.check_call(tx)
    check_account(tx, head.account(sender))
    return tx
