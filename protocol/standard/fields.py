"""The value types of record fields: text, identifiers, credit codes, decimals, currencies,
region codes, phones, accounts, dates and resident ID numbers.

Each ``Annotated`` type below validates strictly and never normalises silently: a value is
either accepted as it is or rejected with a ``ValueError`` whose message says how to fix it
(pydantic turns those into field errors). See :mod:`yilian.protocol.standard` for the value
conventions. The checks the models also call (``check_*``, ``json_type``, ``require_str``,
``OTHER_ID_RE``) are shared within :mod:`yilian.protocol.standard` only, so they are not in
``__all__``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import BeforeValidator, PlainValidator, WithJsonSchema

from yilian.protocol import credit_code as _cc

__all__ = [
    "SCHEMA_VERSION",
    "AccountNumber",
    "CreditCode",
    "Currency",
    "Date",
    "DecimalString",
    "Identifier",
    "Name",
    "Phone",
    "PositiveDecimal",
    "RegionCode",
    "Text",
    "resident_id_check_character",
]

SCHEMA_VERSION: Final = 1
"""Version of the field layout (this module and :mod:`.models`); part of every canonical
encoding."""

_MAX_ITEMS: Final = 1000
_NAME_MAX: Final = 200
_TEXT_MAX: Final = 2000


# ------------------------------------------------------------------------ value types


def json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float | Decimal):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "object"
    if isinstance(v, list | tuple):
        return "array"
    return type(v).__name__


def require_str(v: object, what: str = "a string") -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be {what}, got {json_type(v)}")
    return v


_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_text(v: str, max_len: int, multiline: bool) -> str:
    if not v or v.isspace():
        raise ValueError("must not be empty")
    if len(v) > max_len:
        raise ValueError(f"is {len(v)} characters long; at most {max_len} are allowed")
    if v != v.strip():
        raise ValueError("has leading or trailing whitespace; remove it")
    for i, ch in enumerate(v, start=1):
        if multiline and ch in "\n\t":
            continue
        cat = unicodedata.category(ch)
        if cat == "Cs":
            raise ValueError(f"character {i} is an unpaired surrogate; send valid Unicode text")
        if cat == "Cc" or ch in _BIDI_CONTROLS or (not multiline and cat in ("Zl", "Zp")):
            hint = "use \\n for line breaks" if multiline else "this field is a single line"
            raise ValueError(f"character {i} is control character U+{ord(ch):04X}; remove it "
                             f"({hint})")
    if not unicodedata.is_normalized("NFC", v):
        raise ValueError("is not in Unicode NFC form; normalise it first "
                         "(unicodedata.normalize('NFC', text))")
    return v


def _matching(pattern: re.Pattern[str], message: str) -> Callable[[object], str]:
    """A check that accepts a string ``pattern`` matches whole, else ValueError(message)."""

    def check(v: object) -> str:
        s = require_str(v)
        if not pattern.fullmatch(s):
            raise ValueError(message)
        return s

    return check


def _name(v: object) -> str:
    return check_text(require_str(v), _NAME_MAX, multiline=False)


def _text(v: object) -> str:
    return check_text(require_str(v), _TEXT_MAX, multiline=True)


_IDENTIFIER_RE: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/\-]{0,63}")

_identifier = _matching(_IDENTIFIER_RE, "must be 1-64 ASCII letters, digits, '.', '_', '/' "
                        "or '-', starting with a letter or digit")


def check_credit_code(v: object) -> str:
    s = require_str(v, "an 18-character unified social credit code")
    try:
        return _cc.validate(s)
    except _cc.CreditCodeError as exc:
        raise ValueError(exc.reason) from None


_DECIMAL_RE: Final = re.compile(r"(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,6})?")


def _decimal(v: object) -> str:
    if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        raise ValueError(f'must be a decimal string such as "{v}", not a JSON number '
                         "(numbers lose precision)")
    s = require_str(v, 'a decimal string such as "1250000.00"')
    if not _DECIMAL_RE.fullmatch(s):
        raise ValueError('must be a plain decimal string such as "1250000.00": digits, an '
                         "optional '.' and 1-6 decimals; no sign, exponent, separators or "
                         "leading zeros")
    return s


def _positive_decimal(v: object) -> str:
    s = _decimal(v)
    if Decimal(s) == 0:
        raise ValueError("must be greater than zero")
    return s


_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")
_currency = _matching(_CURRENCY_RE,
                      "must be an ISO 4217 currency code of 3 uppercase letters, e.g. CNY")


# GB/T 2260 province-level prefixes, plus 100000 (national) as used in credit codes.
_PROVINCES: Final = frozenset(
    str(n) for n in (*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47),
                     *range(50, 55), *range(61, 66), 71, 81, 82)
)
_REGION_RE: Final = re.compile(r"[0-9]{6}")


def _region_code(v: object) -> str:
    s = require_str(v, "a 6-digit GB/T 2260 region code")
    if not _REGION_RE.fullmatch(s):
        raise ValueError("must be a 6-digit GB/T 2260 administrative region code, e.g. 440300")
    if s != "100000" and s[:2] not in _PROVINCES:
        raise ValueError(f"starts with {s[:2]!r}, which is not a GB/T 2260 province-level code "
                         "(11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)")
    return s


_PHONE_RE: Final = re.compile(
    r"1[3-9][0-9]{9}"  # mobile
    r"|0[1-9][0-9]{1,2}-?[1-9][0-9]{6,7}(?:-[0-9]{1,6})?"  # landline with area code
    r"|[48]00-?[0-9]{3}-?[0-9]{4}"  # 400/800 service numbers
)
_phone = _matching(_PHONE_RE,
                   "must be a mainland mobile number (11 digits, e.g. 13800138000), a landline "
                   "with area code (e.g. 0755-83212345, optional -extension) or a 400/800 "
                   "number; no spaces or +86 prefix")


_ACCOUNT_RE: Final = re.compile(r"[0-9]{8,32}")
_account_number = _matching(_ACCOUNT_RE,
                            "must be the bank account number as 8-32 digits, without spaces")


_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(v: object) -> date:
    if isinstance(v, datetime):
        raise ValueError("must be a date (YYYY-MM-DD), not a date-time")
    if isinstance(v, date):
        return v
    s = require_str(v, "an ISO date string YYYY-MM-DD")
    if not _DATE_RE.fullmatch(s):
        raise ValueError("must be an ISO date string YYYY-MM-DD, e.g. 2024-03-01")
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{s} is not a calendar date") from None


def check_array(v: object) -> object:
    if isinstance(v, list | tuple):
        if len(v) > _MAX_ITEMS:
            raise ValueError(f"has {len(v)} items; at most {_MAX_ITEMS} are allowed per record")
        return v
    raise ValueError(f"must be an array, got {json_type(v)}")


Name = Annotated[
    str,
    PlainValidator(_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": _NAME_MAX}),
]
"""Single-line text (names, numbers of documents, authorities)."""

Text = Annotated[
    str,
    PlainValidator(_text),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": _TEXT_MAX}),
]
"""Free text; may span lines."""

Identifier = Annotated[
    str,
    PlainValidator(_identifier),
    WithJsonSchema({"type": "string", "pattern": "^" + _IDENTIFIER_RE.pattern + "$"}),
]
CreditCode = Annotated[
    str,
    PlainValidator(check_credit_code),
    WithJsonSchema({"type": "string", "pattern": f"^[{_cc.ALPHABET}]{{18}}$",
                    "description": "unified social credit code (GB 32100-2015)"}),
]
DecimalString = Annotated[
    str,
    PlainValidator(_decimal),
    WithJsonSchema({"type": "string", "pattern": "^" + _DECIMAL_RE.pattern + "$"}),
]
PositiveDecimal = Annotated[
    str,
    PlainValidator(_positive_decimal),
    WithJsonSchema({"type": "string", "pattern": "^" + _DECIMAL_RE.pattern + "$",
                    "description": "greater than zero"}),
]
Currency = Annotated[
    str,
    PlainValidator(_currency),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$", "default": "CNY"}),
]
RegionCode = Annotated[
    str,
    PlainValidator(_region_code),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{6}$",
                    "description": "GB/T 2260 administrative region code"}),
]
Phone = Annotated[
    str,
    PlainValidator(_phone),
    WithJsonSchema({"type": "string", "pattern": "^(?:" + _PHONE_RE.pattern + ")$"}),
]
AccountNumber = Annotated[
    str,
    PlainValidator(_account_number),
    WithJsonSchema({"type": "string", "pattern": "^" + _ACCOUNT_RE.pattern + "$"}),
]
Date = Annotated[date, BeforeValidator(_date)]
"""ISO ``YYYY-MM-DD`` date (``_date`` does the strict parsing; pydantic serialises it)."""


# ------------------------------------------------------------------ resident ID card

_ID_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_BODY_RE: Final = re.compile(r"[0-9]{17}")
OTHER_ID_RE: Final = re.compile(r"[0-9A-Z][0-9A-Z\-]{3,31}")


def resident_id_check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of an 18-digit resident ID (``0``-``9`` or ``X``).

    Raises ``ValueError`` unless ``first17`` is exactly 17 digits.
    """
    if not isinstance(first17, str) or not _ID_BODY_RE.fullmatch(first17):
        raise ValueError("the first 17 characters of a resident ID number must be digits")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return "0123456789X"[(12 - total % 11) % 11]


def check_resident_id(s: str) -> None:
    if len(s) != 18:
        raise ValueError(f"a resident ID number has 18 characters, got {len(s)}")
    if not _ID_BODY_RE.fullmatch(s[:17]):
        raise ValueError("the first 17 characters of a resident ID number must be digits")
    if s[17] == "x":
        raise ValueError("write the check character as uppercase 'X'")
    try:
        date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise ValueError("characters 7-14 of a resident ID number must be a valid birth "
                         "date YYYYMMDD") from None
    if s[17] != resident_id_check_character(s[:17]):
        raise ValueError("the check character (ISO 7064 MOD 11-2) does not match; one of the "
                         "18 characters is mistyped")
