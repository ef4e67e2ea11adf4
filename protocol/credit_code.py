"""Unified social credit code (统一社会信用代码, GB 32100-2015).

Every market entity in a trading center's records is keyed by its unified social
credit code.  The code is 18 characters from a 31-symbol alphabet
(``0-9`` and the uppercase letters except I, O, S, V, Z); a character's value is
its index in :data:`ALPHABET`.

Layout (1-based positions)::

    1       registering department (e.g. 9 = market regulation / 工商)
    2       organisation type within that department (e.g. 1 = enterprise)
    3-8     administrative area code (GB/T 2260)
    9-17    organisation code (GB 11714: 8 body characters + its own check character)
    18      check character over positions 1-17

The check character is ``ALPHABET[(31 - sum(value(c_i) * 3**(i-1) mod 31) mod 31) mod 31]``.

Invariants
----------
* :func:`validate` never changes its input: it returns exactly the string it was
  given or raises :class:`CreditCodeError`.  Lowercase input is an error (with a
  hint to use uppercase), never silently uppercased, so a code has exactly one
  accepted spelling and hashes/keys derived from it are unambiguous.
* ``is_valid(c)`` is true iff ``validate(c)`` does not raise.
* ``validate(make_code(p)) == make_code(p)`` for every valid 17-character prefix ``p``.
* ``from_bytes32(to_bytes32(c)) == c`` for every valid code ``c``; ``from_bytes32``
  accepts exactly the 32-byte values ``to_bytes32`` can produce.
* The GB 11714 organisation-code check (positions 9-17) is advisory only: some
  legitimately issued codes (e.g. those of individual businesses) do not satisfy it.
  :func:`organisation_code_warning` reports it; :func:`validate` ignores it.
"""

from __future__ import annotations

from typing import Final

from yilian.protocol.errors import YilianError

__all__ = [
    "ALPHABET",
    "LENGTH",
    "WEIGHTS",
    "CreditCodeError",
    "check_character",
    "from_bytes32",
    "is_valid",
    "is_valid_bytes32",
    "make_code",
    "organisation_code_warning",
    "to_bytes32",
    "validate",
]

ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 code symbols; a symbol's value is its index."""

LENGTH: Final = 18
"""Length of a unified social credit code."""

WEIGHTS: Final[tuple[int, ...]] = tuple(pow(3, i, 31) for i in range(LENGTH - 1))
"""Weights of positions 1..17: ``3**(i-1) mod 31``."""

_VALUE: Final[dict[str, int]] = {ch: i for i, ch in enumerate(ALPHABET)}
_EXCLUDED: Final = "IOSVZ"
_BYTES32: Final = 32

# GB 11714-1997 organisation code: 8 body characters (0-9, A-Z with A=10 .. Z=35)
# weighted 3, 7, 9, 10, 5, 8, 4, 2; check = 11 - (sum mod 11), 10 -> 'X', 11 -> '0'.
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)


class CreditCodeError(YilianError, ValueError):
    """A string (or 32-byte value) is not a valid unified social credit code.

    ``code`` is the offending input (bytes inputs are shown as ``0x`` hex), ``reason``
    says exactly what is wrong and how to fix it, and ``position`` is the 1-based
    position of the bad character when one character is to blame (else ``None``).
    """

    def __init__(self, code: str, reason: str, position: int | None = None) -> None:
        super().__init__(f"invalid unified social credit code {code!r}: {reason}")
        self.code = code
        self.reason = reason
        self.position = position


def _check_symbols(code: str, expected_length: int, what: str) -> None:
    """Raise unless ``code`` is ``expected_length`` characters, all from :data:`ALPHABET`."""
    if len(code) != expected_length:
        raise CreditCodeError(
            code,
            f"{what} must be exactly {expected_length} characters, got {len(code)}",
        )
    for pos, ch in enumerate(code, start=1):
        if ch in _VALUE:
            continue
        if ch.upper() in _VALUE:
            reason = (
                f"character {ch!r} at position {pos} is lowercase; credit codes use "
                f"uppercase letters (write {ch.upper()!r})"
            )
        elif ch.upper() in _EXCLUDED:
            reason = (
                f"character {ch!r} at position {pos} is not allowed: credit codes never "
                "contain I, O, S, V or Z (check for a misread 1, 0, 5, U or 2)"
            )
        else:
            reason = (
                f"character {ch!r} at position {pos} is not allowed; use digits 0-9 and "
                "uppercase letters other than I, O, S, V, Z"
            )
        raise CreditCodeError(code, reason, pos)


def _check_char(first17: str) -> str:
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def check_character(first17: str) -> str:
    """The check character (position 18) for the first 17 characters of a code.

    Raises :class:`CreditCodeError` if ``first17`` is not 17 valid symbols.
    """
    if not isinstance(first17, str):
        raise CreditCodeError(repr(first17), "expected a string of 17 characters")
    _check_symbols(first17, LENGTH - 1, "the code without its check character")
    return _check_char(first17)


def validate(code: str) -> str:
    """Return ``code`` unchanged if it is a valid unified social credit code.

    Raises :class:`CreditCodeError` naming the problem: wrong length, the first bad
    character and its 1-based position, or a check-character mismatch.
    """
    if not isinstance(code, str):
        raise CreditCodeError(
            repr(code), f"expected a string of {LENGTH} characters, got {type(code).__name__}"
        )
    _check_symbols(code, LENGTH, "a unified social credit code")
    expected = _check_char(code[:-1])
    if code[-1] != expected:
        raise CreditCodeError(
            code,
            f"check character is {code[-1]!r}, expected {expected!r} "
            "(one of the 18 characters is probably mistyped)",
            LENGTH,
        )
    return code


def is_valid(code: object) -> bool:
    """True iff :func:`validate` accepts ``code``."""
    if not isinstance(code, str):
        return False
    try:
        validate(code)
    except CreditCodeError:
        return False
    return True


def make_code(first17: str) -> str:
    """``first17`` followed by its check character (for tests and development seeds)."""
    return first17 + check_character(first17)


def organisation_code_warning(code: str) -> str | None:
    """Advisory GB 11714 check of the organisation code embedded at positions 9-17.

    Returns ``None`` when the organisation code's own mod-11 check character matches,
    else a human-readable warning.  A warning never makes the credit code invalid
    (codes issued to e.g. individual businesses need not satisfy GB 11714).
    Raises :class:`CreditCodeError` only if ``code`` itself is not a valid credit code.
    """
    validate(code)
    org = code[8:17]
    body, actual = org[:8], org[8]
    total = sum(int(ch, 36) * w for ch, w in zip(body, _ORG_WEIGHTS, strict=True))
    r = 11 - total % 11
    expected = "X" if r == 10 else "0" if r == 11 else str(r)
    if actual == expected:
        return None
    return (
        f"organisation code {body}-{actual} (positions 9-17 of {code}) fails its GB 11714 "
        f"check: check character is {actual!r}, expected {expected!r}; the credit code itself "
        "is valid, but confirm it with the registering department if this entity should "
        "have a GB 11714 organisation code"
    )


def to_bytes32(code: str) -> bytes:
    """The code as ASCII, right-padded with zero bytes to 32 bytes (a ``bytes32`` key).

    Validates first; raises :class:`CreditCodeError` for an invalid code.
    """
    return validate(code).encode("ascii").ljust(_BYTES32, b"\x00")


def from_bytes32(b: bytes | bytearray | memoryview) -> str:
    """Strict inverse of :func:`to_bytes32`.

    Rejects anything that is not exactly 32 bytes, whose bytes 19-32 are not all zero,
    or whose first 18 bytes are not a valid code, with :class:`CreditCodeError`.
    """
    if not isinstance(b, bytes | bytearray | memoryview):
        raise CreditCodeError(repr(b), f"expected 32 bytes, got {type(b).__name__}")
    raw = bytes(b)
    shown = "0x" + raw.hex()
    if len(raw) != _BYTES32:
        raise CreditCodeError(shown, f"a bytes32 credit code must be 32 bytes, got {len(raw)}")
    head, padding = raw[:LENGTH], raw[LENGTH:]
    if any(padding):
        first = next(i for i, x in enumerate(padding) if x) + LENGTH + 1
        raise CreditCodeError(
            shown,
            f"bytes {LENGTH + 1}-{_BYTES32} must be zero padding, but byte {first} is not "
            "(the value was not produced by to_bytes32)",
            first,
        )
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError as exc:
        raise CreditCodeError(
            shown, f"byte {exc.start + 1} is not ASCII; a credit code is 18 ASCII characters",
            exc.start + 1,
        ) from None
    try:
        return validate(text)
    except CreditCodeError as exc:
        raise CreditCodeError(shown, exc.reason, exc.position) from None


def is_valid_bytes32(b: bytes) -> bool:
    """True iff :func:`from_bytes32` accepts ``b``: the on-chain member-id form of a valid
    code (what ``Members.valid_credit_code`` and the credit-code precompile answer)."""
    try:
        from_bytes32(b)
    except CreditCodeError:
        return False
    return True

