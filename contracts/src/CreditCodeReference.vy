# pragma version ~=0.4.3
"""
@title CreditCodeReference
@license Apache-2.0
@notice The GB 32100-2015 unified social credit code check as EVM code: the executable
        reference for the credit-code precompile (0x...0a1200) that Members, Records and
        Grants call. Not deployed in genesis; tests deploy it and compare its answers
        with the precompile's (tests/test_natstd_precompiles.py).
@dev This is the check Members.vy ran in Vyper before the precompile existed, unchanged.
"""

# Value of each letter 'A'..'Y' in the credit-code alphabet, one byte per letter
# (byte k, counted from the least significant end, is the value of chr(65 + k));
# 0xff marks letters the alphabet leaves out (I, O, S, V; Z is past the table).
# In hex: 0x1e1d1cff1b1aff191817ff1615141312ff11100f0e0d0c0b0a
LETTER_VALUES: constant(uint256) = 189026907306200262456203828916295456724090115482395463125770


@internal
@pure
def _valid_credit_code(code: bytes32) -> bool:
    """
    @dev 18 alphabet characters then 14 zero bytes, and the 18th character is
         the GB 32100-2015 check character of the first 17.
    """
    x: uint256 = convert(code, uint256)
    if x & (2**112 - 1) != 0:
        return False
    total: uint256 = 0
    weight: uint256 = 1
    for i: uint256 in range(18):
        c: uint256 = (x >> (248 - 8 * i)) & 255
        v: uint256 = 0
        if c >= 48 and c <= 57:
            v = c - 48
        elif c >= 65 and c <= 89:
            v = (LETTER_VALUES >> (8 * (c - 65))) & 255
            if v == 255:
                return False
        else:
            return False
        if i == 17:
            return v == (31 - total % 31) % 31
        total += v * weight
        weight = weight * 3 % 31
    return False


@external
@pure
def valid(code: bytes32) -> bool:
    """
    @notice True iff `code` is a well-formed unified social credit code.
    """
    return self._valid_credit_code(code)
