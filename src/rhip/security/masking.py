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
from collections.abc import Mapping
from enum import StrEnum
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


def mask_address(value: str | None) -> str | None:
    """江苏省南京市**** : the first six characters (province, city, about the district) and stars."""
    if not value:
        return value
    return value[:6] + "****" if len(value) > 6 else value[:1] + "*" * (len(value) - 1)


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


# ------------------------------------------------------------------ by role (rules as data)


class Kind(StrEnum):
    """A kind of personal value, masked on its own rule."""

    id_number = "id_number"
    phone = "phone"
    name = "name"
    address = "address"


EVERY_KIND: frozenset[Kind] = frozenset(Kind)
MASK_OF = {Kind.id_number: mask_id, Kind.phone: mask_phone, Kind.name: mask_name, Kind.address: mask_address}

# The personal values each role sees whole, by view; every other role sees them masked. A resident sees
# their own values whole (the ID number is theirs) and nobody else's, in every view.
#  care:    appointments, patients and receipts (REST, FHIR, pages): the clinician and the hotline agent
#           call the patient by name; nobody but the person sees the whole ID number, phone or address
#  linkage: the EMPI (identity): its stewards decide merges from names and numbers side by side
#  telemed: a telemedicine request (REST, FHIR, pages) read by its care team, the clinicians of the
#           requesting and the performing institution (telemed's access rule refuses every other
#           clinician first): they see the patient as the request names them, ID number included, to
#           match the person examined; the information centre's staff see requests masked
#  mch:     maternal and child health records (pages and JSON): the district's MCH workers care for the
#           woman and the child by name and number; managers read every district masked
#  card:    a scanned health card resolved at a counter: the terminal and the doctor identify the patient
#           in front of them by the whole number; a hotline agent acts on the card id alone
WHOLE: dict[str, Mapping[Role, frozenset[Kind]]] = {
    "care": {
        Role.doctor: frozenset({Kind.name}),
        Role.family_doctor: frozenset({Kind.name}),
        Role.agent: frozenset({Kind.name}),
    },
    "telemed": {
        Role.doctor: frozenset({Kind.name, Kind.id_number}),
        Role.family_doctor: frozenset({Kind.name, Kind.id_number}),
    },
    "linkage": {Role.manager: EVERY_KIND, Role.auditor: EVERY_KIND, Role.admin: EVERY_KIND},
    "mch": {Role.doctor: EVERY_KIND, Role.family_doctor: EVERY_KIND, Role.admin: EVERY_KIND},
    "card": {Role.uploader: frozenset({Kind.id_number}), Role.doctor: frozenset({Kind.id_number})},
}

# Field names (of datasets, problem lists, JSON) that hold personal values; any other field's text still
# has embedded ID numbers and phones masked (mask_text).
FIELD_KINDS: dict[str, Kind] = {
    **dict.fromkeys(
        (
            "id_number",
            "person_id",
            "mother_id_number",
            "father_id_number",
            "guardian_id",
            "patient_id_number",
        ),
        Kind.id_number,
    ),
    **dict.fromkeys(("phone", "contact_phone", "mobile", "guardian_phone", "mother_phone"), Kind.phone),
    **dict.fromkeys(
        ("name", "patient_name", "person_name", "mother_name", "father_name", "child_name", "guardian_name"),
        Kind.name,
    ),
    **dict.fromkeys(("address", "home_address", "registered_address"), Kind.address),
}

ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"  # WS/T 500: 居民身份证号, the FHIR identifier system
_FHIR_PEOPLE = frozenset({"Patient", "Person", "RelatedPerson"})


class Masker:
    """How one caller sees personal values, in one view (a key of WHOLE: "care", "linkage", ...)."""

    __slots__ = ("role", "subject", "whole")

    def __init__(self, principal: Any, view: str = "care") -> None:
        self.role: Role | None = getattr(principal, "role", None)
        self.subject: str | None = getattr(principal, "subject", None)
        self.whole: frozenset[Kind] = WHOLE[view].get(self.role, frozenset()) if self.role else frozenset()

    def shows(self, kind: Kind, owner: str | None = None) -> bool:
        """Whether this caller sees a value of this kind whole (`owner`: the ID number it belongs to)."""
        return kind in self.whole or sees_whole_id(self.role, self.subject, owner)

    def value(self, kind: Kind, value: str | None, owner: str | None = None) -> str | None:
        """The value as this caller may see it."""
        if value is None or self.shows(kind, owner):
            return value
        return MASK_OF[kind](value)

    def id(self, value: str | None) -> str | None:
        """An ID number (its own owner)."""
        return self.value(Kind.id_number, value, value)

    def text(self, value: str | None, owner: str | None = None) -> str | None:
        """Free text with embedded ID numbers and phones masked (whole for the person it is about)."""
        if not value or (self.role is Role.resident and sees_whole_id(self.role, self.subject, owner)):
            return value
        return mask_text(value)

    def field(self, field: str | None, value: str | None, owner: str | None = None) -> str | None:
        """A value of a named field (a dataset's column): masked by its kind, or as free text."""
        kind = FIELD_KINDS.get(field or "")
        if kind is None:
            return self.text(value, owner)
        if kind is Kind.id_number:
            owner = owner or value
        return self.value(kind, value, owner)

    def fields(self, data: Mapping[str, Any], owner: str | None = None) -> dict[str, Any]:
        """A copy of a JSON-ready dict with every personal field masked (by FIELD_KINDS)."""
        out = dict(data)
        for key, value in data.items():
            if key in FIELD_KINDS and isinstance(value, str):
                out[key] = self.field(key, value, owner)
        return out

    # -------------------------------------------------------------- FHIR

    def fhir(self, resource: Any) -> Any:
        """A FHIR resource (or Bundle) with the people's identifiers, names, phones and addresses masked;
        an Appointment's patient reference by ID number too. The resource given is not changed."""
        if not isinstance(resource, dict):
            return resource
        rtype = resource.get("resourceType")
        if rtype == "Bundle":
            entries = resource.get("entry")
            if not isinstance(entries, list):
                return resource
            return {**resource, "entry": [self._entry(e) for e in entries]}
        if rtype in _FHIR_PEOPLE:
            return self._person(resource)
        if isinstance(resource.get("participant"), list):  # Appointment, Encounter
            return {**resource, "participant": [self._participant(p) for p in resource["participant"]]}
        subject = resource.get("subject") or resource.get("patient")
        if isinstance(subject, dict):
            key = "subject" if "subject" in resource else "patient"
            return {**resource, key: self._reference(subject)}
        return resource

    def _entry(self, entry: Any) -> Any:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            return {**entry, "resource": self.fhir(entry["resource"])}
        return entry

    def _person(self, res: dict[str, Any]) -> dict[str, Any]:
        owner = _fhir_id_number(res.get("identifier"))
        if self.whole >= EVERY_KIND or sees_whole_id(self.role, self.subject, owner):
            return res
        out = dict(res)
        if isinstance(res.get("identifier"), list):
            out["identifier"] = [self._identifier(i, owner) for i in res["identifier"]]
        if isinstance(res.get("name"), list):
            out["name"] = [self._name(n, owner) for n in res["name"]]
        if isinstance(res.get("telecom"), list):
            out["telecom"] = [
                {**t, "value": self.value(Kind.phone, t.get("value"), owner)}
                if isinstance(t, dict) and isinstance(t.get("value"), str)
                else t
                for t in res["telecom"]
            ]
        if isinstance(res.get("address"), list):
            out["address"] = [self._address(a, owner) for a in res["address"]]
        return out

    def _identifier(self, ident: Any, owner: str | None) -> Any:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str) or not _is_id_number(ident):
            return ident
        return {**ident, "value": self.value(Kind.id_number, ident["value"], owner)}

    def _name(self, name: Any, owner: str | None) -> Any:
        if not isinstance(name, dict) or self.shows(Kind.name, owner):
            return name
        out = dict(name)
        if isinstance(name.get("text"), str):
            out["text"] = mask_name(name["text"])
        if isinstance(name.get("given"), list):
            out["given"] = ["*" * len(g) if isinstance(g, str) else g for g in name["given"]]
        return out

    def _address(self, addr: Any, owner: str | None) -> Any:
        if not isinstance(addr, dict) or self.shows(Kind.address, owner):
            return addr
        out = dict(addr)
        if isinstance(addr.get("text"), str):
            out["text"] = mask_address(addr["text"])
        if isinstance(addr.get("line"), list):
            out["line"] = ["****" for _ in addr["line"]]
        return out

    def _participant(self, part: Any) -> Any:
        if isinstance(part, dict) and isinstance(part.get("actor"), dict):
            return {**part, "actor": self._reference(part["actor"])}
        return part

    def _reference(self, ref: dict[str, Any]) -> dict[str, Any]:
        """A reference to a patient by ID number (Patient/<number>, identifier, display)."""
        ident = ref.get("identifier")
        owner = ident.get("value") if isinstance(ident, dict) and _is_id_number(ident) else None
        text = ref.get("reference")
        if owner is None and isinstance(text, str) and text.startswith("Patient/"):
            tail = text[len("Patient/") :]
            owner = tail if ID_TEXT.fullmatch(tail) or ID15_TEXT.fullmatch(tail) else None
        if owner is None:
            return ref
        out = dict(ref)
        if not self.shows(Kind.id_number, owner):
            if isinstance(ident, dict):
                out["identifier"] = {**ident, "value": mask_id(owner)}
            if isinstance(text, str) and owner in text:
                del out["reference"]  # a literal reference would carry the number: the identifier stands
        if isinstance(ref.get("display"), str):
            out["display"] = self.value(Kind.name, ref["display"], owner)
        return out


def _is_id_number(ident: dict[str, Any]) -> bool:
    if ident.get("system") == ID_SYSTEM:
        return True
    coding = (ident.get("type") or {}).get("coding") if isinstance(ident.get("type"), dict) else None
    return isinstance(coding, list) and any(isinstance(c, dict) and c.get("code") == "NNCHN" for c in coding)


def _fhir_id_number(identifiers: Any) -> str | None:
    for ident in identifiers if isinstance(identifiers, list) else ():
        if isinstance(ident, dict) and _is_id_number(ident) and isinstance(ident.get("value"), str):
            return str(ident["value"])
    return None


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
