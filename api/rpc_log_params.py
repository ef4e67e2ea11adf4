"""Strict parser for the log filter object of ``eth_getLogs``, ``eth_newFilter`` and
``eth_subscribe("logs")``.

It follows the rules and invariants of :mod:`yilian.api.rpc_params` (only
:class:`~yilian.api.rpc_errors.InvalidParams` is raised, with a message naming where the
fault is; pure; hex strings only) and geth's limits on the size of one filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from yilian.api.rpc_errors import InvalidParams
from yilian.api.rpc_params import address, block_number_or_tag, hash32, must_be

#: Topic positions in a log filter (LOG0..LOG4 carry at most 4 topics).
MAX_TOPICS: Final = 4
#: Geth's limits on the size of a single log filter.
MAX_FILTER_ADDRESSES: Final = 1000
MAX_SUB_TOPICS: Final = 1000

#: One topic position: ``None`` matches anything, a tuple matches any member.
TopicPosition = tuple[bytes, ...] | None


@dataclass(frozen=True, slots=True)
class LogFilter:
    """A parsed ``eth_getLogs`` / ``eth_newFilter`` filter object.

    Invariants:

    * Either ``block_hash`` is set and ``from_block``/``to_block`` are
      ``None``, or ``block_hash`` is ``None`` and both bounds are set
      (absent bounds default to ``"latest"``).
    * When both bounds are ints, ``from_block <= to_block``.
    * ``addresses`` is empty to match any address; otherwise it is
      duplicate-free, 20-byte entries in request order.
    * ``topics`` has at most 4 positions; ``None`` is a wildcard and a tuple is
      a non-empty OR-set of 32-byte topics.  Trailing wildcards are kept.
    """

    from_block: int | str | None = "latest"
    to_block: int | str | None = "latest"
    block_hash: bytes | None = None
    addresses: tuple[bytes, ...] = ()
    topics: tuple[TopicPosition, ...] = field(default=())

    @property
    def address_set(self) -> frozenset[bytes]:
        """``addresses`` as a set, for :func:`rpc_format.log_matches`."""
        return frozenset(self.addresses)


_FILTER_KEYS: Final = frozenset({"fromBlock", "toBlock", "blockHash", "address", "topics"})


def _topic_position(value: Any, where: str) -> TopicPosition:
    """Parse one entry of ``topics``: null, a hash, or an array of hashes/nulls."""
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) > MAX_SUB_TOPICS:
            raise InvalidParams(
                f"{where} has {len(value)} alternatives; at most {MAX_SUB_TOPICS} are allowed"
            )
        parsed: list[bytes] = []
        wildcard = False
        for i, item in enumerate(value):
            if item is None:
                wildcard = True  # geth: a null alternative matches anything
                continue
            topic = hash32(item, f"{where}[{i}]")
            if topic not in parsed:
                parsed.append(topic)
        if wildcard or not parsed:
            return None
        return tuple(parsed)
    if isinstance(value, str):
        return (hash32(value, where),)
    raise must_be(where, "null, a 32-byte hex topic, or an array of topics (OR)", value)


def log_filter(value: Any, where: str) -> LogFilter:
    """Parse a log filter object into :class:`LogFilter` (see its invariants).

    ``blockHash`` is mutually exclusive with ``fromBlock``/``toBlock``;
    ``address`` is one address or an array; ``topics`` has at most 4
    positions, each null, a topic, or an array of topics.  Unknown keys are
    rejected.
    """
    if not isinstance(value, dict):
        raise must_be(where, "a filter object (JSON object)", value)
    unknown = sorted(str(k) for k in value if k not in _FILTER_KEYS)
    if unknown:
        raise InvalidParams(
            f"{where} has unknown key {unknown[0]!r}; allowed keys are "
            + ", ".join(sorted(_FILTER_KEYS))
        )

    raw_hash = value.get("blockHash")
    raw_from = value.get("fromBlock")
    raw_to = value.get("toBlock")
    block_hash: bytes | None = None
    from_block: int | str | None
    to_block: int | str | None
    if raw_hash is not None:
        if raw_from is not None or raw_to is not None:
            raise InvalidParams(
                f"{where}: 'blockHash' cannot be combined with 'fromBlock'/'toBlock'; "
                "send either a block hash or a block range"
            )
        block_hash = hash32(raw_hash, f"{where}.blockHash")
        from_block = to_block = None
    else:
        from_block = (
            "latest" if raw_from is None else block_number_or_tag(raw_from, f"{where}.fromBlock")
        )
        to_block = "latest" if raw_to is None else block_number_or_tag(raw_to, f"{where}.toBlock")
        if isinstance(from_block, int) and isinstance(to_block, int) and from_block > to_block:
            raise InvalidParams(
                f"{where}: invalid block range, fromBlock ({from_block}) is after "
                f"toBlock ({to_block})"
            )

    addresses: tuple[bytes, ...] = ()
    raw_addr = value.get("address")
    if isinstance(raw_addr, list):
        if len(raw_addr) > MAX_FILTER_ADDRESSES:
            raise InvalidParams(
                f"{where}.address has {len(raw_addr)} entries; at most "
                f"{MAX_FILTER_ADDRESSES} are allowed"
            )
        seen: list[bytes] = []
        for i, item in enumerate(raw_addr):
            parsed = address(item, f"{where}.address[{i}]")
            if parsed not in seen:
                seen.append(parsed)
        addresses = tuple(seen)
    elif raw_addr is not None:
        if not isinstance(raw_addr, str):
            raise must_be(f"{where}.address", "an address or an array of addresses", raw_addr)
        addresses = (address(raw_addr, f"{where}.address"),)

    topics: tuple[TopicPosition, ...] = ()
    raw_topics = value.get("topics")
    if raw_topics is not None:
        if not isinstance(raw_topics, list):
            raise must_be(f"{where}.topics", "an array of up to 4 topic positions", raw_topics)
        if len(raw_topics) > MAX_TOPICS:
            raise InvalidParams(
                f"{where}.topics has {len(raw_topics)} positions; at most {MAX_TOPICS} "
                "are allowed (logs carry at most 4 topics)"
            )
        topics = tuple(_topic_position(t, f"{where}.topics[{i}]") for i, t in enumerate(raw_topics))

    return LogFilter(
        from_block=from_block,
        to_block=to_block,
        block_hash=block_hash,
        addresses=addresses,
        topics=topics,
    )
