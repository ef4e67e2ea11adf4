"""The yilian data standard: what a shared market-entity record may contain.

Field families follow the national 公共资源交易平台系统数据规范 V2.0 (public-resource
trading platform data specification); field names are snake_case English.  There is one
pydantic model per :class:`RecordType`; :func:`validate_record` checks a payload against
it and returns the normalised JSON-able dict, and :func:`canonical_bytes` /
:func:`parse_canonical` give the one byte encoding that is hashed, signed and stored
on chain.

Value conventions
-----------------
* Dates are ISO ``YYYY-MM-DD`` strings (``datetime.date`` objects are accepted from
  Python callers; datetimes and other date spellings are not).
* Amounts and scores are decimal strings without sign or exponent, at most 18 integer
  digits and 6 decimals (``"1250000.00"``); JSON numbers are rejected because floats
  lose precision.  The given precision is kept: ``"100"`` and ``"100.00"`` are both
  valid and encode differently.
* Text is NFC-normalised Unicode without control characters, bidi overrides or
  leading/trailing whitespace (rejected, never silently changed).  Single-line fields
  (:data:`Name`) are at most 200 characters; free text (:data:`Text`) may contain
  ``\\n`` and ``\\t`` and is at most 2000 characters.
* Credit codes are validated with :mod:`yilian.protocol.credit_code`; region codes are
  6-digit GB/T 2260 codes whose first two digits are a province-level code (or the
  national code ``100000``); currencies are 3 uppercase letters (ISO 4217, default CNY).
* Optional fields are always present in the normalised output (``null`` when absent)
  and lists default to empty, so every record has exactly one canonical encoding.

Invariants
----------
* ``validate_record(t, validate_record(t, p)) == validate_record(t, p)`` (idempotent).
* ``parse_canonical(canonical_bytes(t, p)) == (RecordType(t), SCHEMA_VERSION,
  validate_record(t, p))`` and ``parse_canonical`` accepts *only* such byte strings.
* Every rejection is a :class:`RecordInvalid` listing every bad field (dotted paths,
  e.g. ``"contact.phone"`` or ``"blacklist.0.subject_credit_code"``), or, from
  ``parse_canonical`` only, a :class:`CanonicalError` for bytes that are not a
  canonical encoding.  Nothing else escapes for any input.
* Error messages never echo personal ID numbers.

Modules (low to high; each imports only those before it): :mod:`.fields` (value types of
fields), :mod:`.enums` (record types, owners, enumerations, the errors), :mod:`.models`
(one pydantic model per record type, :func:`validate_record`), :mod:`.canonical` (the
byte encoding), :mod:`.examples`. The public names of all five (each module's
``__all__``) are importable from here.
"""

from __future__ import annotations

from yilian.protocol.standard.canonical import *  # noqa: F403
from yilian.protocol.standard.enums import *  # noqa: F403
from yilian.protocol.standard.examples import *  # noqa: F403
from yilian.protocol.standard.fields import *  # noqa: F403
from yilian.protocol.standard.models import *  # noqa: F403
