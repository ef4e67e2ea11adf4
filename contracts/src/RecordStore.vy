# pragma version ~=0.4.3
"""
@title RecordStore
@license Apache-2.0
@notice Minimal keyed record store used by yilian for data-sharing records
        and throughput benchmarks. Every `put` overwrites the value stored
        under `key`, bumps the global write counter and emits `RecordPut`.
@dev Deliberately tiny and branch-free so that a `put` costs close to the
     intrinsic SSTORE + LOG3 price. No access control: the permissioned
     network restricts who can send transactions at all.
"""


event RecordPut:
    key: indexed(bytes32)
    writer: indexed(address)
    value: bytes32


# @notice Latest value written under each key (zero if never written).
records: public(HashMap[bytes32, bytes32])

# @notice Total number of successful `put` calls since deployment.
writes: public(uint256)


@external
def put(key: bytes32, data: bytes32):
    """
    @notice Store `data` under `key`, overwriting any previous value.
    @dev Increments `writes` by one and emits `RecordPut(key, msg.sender, data)`.
         (`value` is reserved in Vyper function arguments, hence `data`.)
    @param key Record key.
    @param data Record value (typically a content hash).
    """
    self.records[key] = data
    self.writes += 1
    log RecordPut(key=key, writer=msg.sender, value=data)


@view
@external
def get(key: bytes32) -> bytes32:
    """
    @notice Return the latest value stored under `key` (zero if unset).
    @param key Record key.
    @return The stored value.
    """
    return self.records[key]
