"""Masking rules in one place: how ID numbers, phones and names are shown, by role, everywhere
(pages, JSON, FHIR, exports, the audit list and the logs).

Rule: a resident ID number is shown whole only to the resident it belongs to; everyone else (doctors,
agents, managers, auditors, admins, channels) sees `320102********123X` — the area code tells the
district and the last four let a counter clerk match the card in the patient's hand. Phones show as
`138****5678`. Free text (problem lists, audit targets, log lines) has every embedded ID number masked.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rhip.security.roles import Role

ID_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
ID15_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{6})(\d{3})(?![0-9A-Za-z])")
PHONE_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_id(value: str | None) -> str | None:
    """320102********123X (18 characters), 320102******123 (15), or stars but the last two."""
    if not value:
        return value
    if len(value) == 18:
        return f"{value[:6]}********{value[-4:]}"
    if len(value) == 15:
        return f"{value[:6]}******{value[-3:]}"
    return "*" * max(len(value) - 2, 1) + value[-2:]


def mask_phone(value: str | None) -> str | None:
    """138****5678."""
    if not value or len(value) < 7:
        return value
    return f"{value[:3]}****{value[-4:]}"


def mask_name(value: str | None) -> str | None:
    """张*明: the family name and the last character (two-character names: 张*)."""
    if not value:
        return value
    if len(value) <= 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def mask_text(text: str) -> str:
    """Every ID number (and mobile number) inside free text masked."""
    text = ID_TEXT.sub(lambda m: f"{m[1]}********{m[3][-4:]}" if len(m[3]) == 4 else m[0], text)
    text = ID15_TEXT.sub(lambda m: f"{m[1]}******{m[3]}", text)
    return PHONE_TEXT.sub(lambda m: f"{m[1]}****{m[3]}", text)


def sees_whole_id(role: Role | str | None, subject: str | None, id_number: str | None) -> bool:
    """Whether this caller may see this ID number whole: only its own holder."""
    return (
        role == Role.resident
        and subject is not None
        and id_number is not None
        and (subject.strip().upper() == id_number.strip().upper())
    )


def id_for(principal: Any, id_number: str | None) -> str | None:
    """The ID number as this principal may see it (`principal` has `.role` and `.subject`)."""
    if principal is not None and sees_whole_id(principal.role, principal.subject, id_number):
        return id_number
    return mask_id(id_number)


def mask_fields(
    data: dict[str, Any], principal: Any, *, id_fields: tuple[str, ...] = ("person_id",)
) -> dict[str, Any]:
    """A copy of a JSON-ready dict with its ID-number fields masked for this principal."""
    out = dict(data)
    for f in id_fields:
        if isinstance(out.get(f), str):
            out[f] = id_for(principal, out[f])
    return out


class MaskingFilter(logging.Filter):
    """A log filter that masks ID numbers and phones in every message (and the access log's path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message and arguments in place; never drops a record."""
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        if record.args:
            if isinstance(record.args, tuple):
                record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in record.args)
            elif isinstance(record.args, dict):
                record.args = {k: mask_text(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_log_masking() -> None:
    """Put the masking filter on the access log, the rhip loggers and every root handler (idempotent)."""
    targets = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "rhip")]
    targets.extend(logging.getLogger().handlers)  # type: ignore[arg-type]
    for target in targets:
        if not any(isinstance(f, MaskingFilter) for f in target.filters):
            target.addFilter(MaskingFilter())
