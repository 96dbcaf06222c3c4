"""The records in the payload: where the list is, and one :class:`Record` per item.

Validation names the field and the record's index (``record #2 has no key field 'quarter'``);
a payload that does not fit is ``SourceUnhealthy(reason="schema")``, or ``"empty"``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from ..errors import SourceUnhealthy

RECORDS_KEYS = ("records", "quarters", "items", "data")
KEY_FIELDS = ("quarter", "id", "key")
TITLE_FIELDS = ("title", "name")
MAX_NAME_BYTES = 200  # file names stay well under the usual 255-byte limit


@dataclass
class Record:
    index: int
    key: str
    title: str
    data: dict[str, Any]  # the record without its title field
    filename: str
    raw: dict[str, Any]


def find_records(payload: Any, records_key: str | None) -> list[Any]:
    """The record list: at ``records_key`` (dots walk nested objects), else the payload
    itself when it is a list, else the first of :data:`RECORDS_KEYS` that holds a list."""
    if records_key:
        return _at_key(payload, records_key)
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for k in RECORDS_KEYS:
            if isinstance(payload.get(k), list):
                return list(payload[k])
    raise SourceUnhealthy(
        f"no list of records in the payload (it is {_kind(payload)}); expected a list or an "
        f"object with one of {'/'.join(RECORDS_KEYS)}, or pass --records-key KEY",
        reason="schema",
    )


def build_records(
    items: list[Any], *, key_field: str | None, title_field: str | None
) -> list[Record]:
    """One record per item; the key field is chosen from the first item, then required."""
    if not items:
        raise SourceUnhealthy("the source holds no records (an empty list)", reason="empty")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SourceUnhealthy(
                f"record #{i} is {_kind(item)}, not an object; the payload does not fit",
                reason="schema",
            )
    first: dict[str, Any] = items[0]
    kf = key_field or next((k for k in KEY_FIELDS if k in first), KEY_FIELDS[0])
    records: list[Record] = []
    seen: dict[str, Record] = {}
    for i, item in enumerate(items):
        rec = _record(i, item, kf, chosen=key_field is None, title_field=title_field)
        folded = rec.filename.casefold()  # case-insensitive file systems would merge these
        if folded in seen:
            other = seen[folded]
            raise SourceUnhealthy(
                f"records #{other.index} ({kf}={other.key!r}) and #{i} ({kf}={rec.key!r}) both "
                f"map to the file {rec.filename}; make the keys unique or pick another "
                "--key-field",
                reason="schema",
            )
        seen[folded] = rec
        records.append(rec)
    return records


def slugify(key: str) -> str:
    """Keep Unicode letters and digits, ``-``, ``_`` and ``.``; anything else becomes ``-``."""
    text = unicodedata.normalize("NFC", key.strip())
    chars = [c if unicodedata.category(c)[0] in "LN" or c in "-_." else "-" for c in text]
    return re.sub(r"-{2,}", "-", "".join(chars)).strip("-.")


def _at_key(payload: Any, records_key: str) -> list[Any]:
    node: Any = payload
    if isinstance(node, dict) and records_key in node:
        node = node[records_key]
    else:
        for part in records_key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise SourceUnhealthy(
                    f"--records-key {records_key!r}: the payload has no {part!r} "
                    f"(it is {_kind(node)}); fix --records-key or the source",
                    reason="schema",
                )
            node = node[part]
    if not isinstance(node, list):
        raise SourceUnhealthy(
            f"--records-key {records_key!r} holds {_kind(node)}, not a list of records",
            reason="schema",
        )
    return node


def _record(
    i: int, item: dict[str, Any], kf: str, *, chosen: bool, title_field: str | None
) -> Record:
    if kf not in item:
        hint = " (chosen from record #0; or pass --key-field)" if chosen else ""
        raise SourceUnhealthy(
            f"record #{i} has no key field {kf!r}{hint}; its fields: {list(item)[:10]}",
            reason="schema",
        )
    key = _scalar_text(item[kf])
    if key is None:
        raise SourceUnhealthy(
            f"record #{i}: key field {kf!r} is {_kind(item[kf])}, not a non-empty "
            "string or integer",
            reason="schema",
        )
    tf = _title_field(i, item, f"{kf}={key!r}", title_field)
    title = key if tf is None else (_scalar_text(item[tf]) or str(item[tf]))
    data = {k: v for k, v in item.items() if k != tf}
    filename = _filename(i, key, kf)
    return Record(index=i, key=key, title=title, data=data, filename=filename, raw=item)


def _title_field(i: int, item: dict[str, Any], named: str, title_field: str | None) -> str | None:
    if title_field:
        if title_field not in item:
            raise SourceUnhealthy(
                f"record #{i} ({named}) has no title field {title_field!r}", reason="schema"
            )
        return title_field
    return next((t for t in TITLE_FIELDS if t in item and item[t] not in (None, "")), None)


def _filename(i: int, key: str, kf: str) -> str:
    slug = slugify(key)
    if not slug:
        raise SourceUnhealthy(
            f"record #{i}: key {key!r} ({kf}) leaves no letters or digits for a file name",
            reason="schema",
        )
    filename = slug + ".md"
    if len(filename.encode("utf-8")) > MAX_NAME_BYTES:
        raise SourceUnhealthy(
            f"record #{i}: key {kf}={key[:40]!r}... makes a file name over "
            f"{MAX_NAME_BYTES} bytes; pick a shorter --key-field",
            reason="schema",
        )
    return filename


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value).strip() or None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with keys {list(value)[:8]}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}" if value is not None else "null"
