"""Identity services (the EMPI's public face): link a patient record to a person, read a person, find
persons by ID number or phone; the review queue, merge and unmerge. Callers own the transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import Session

from rhip.errors import Invalid, NotFound
from rhip.identity import features as feat
from rhip.identity.linker import Bands, Incoming, Linked, link_many
from rhip.identity.models import PatientRecord, Person
from rhip.identity.schemas import LinkRequest, LinkResult, PersonRead, RecordRead
from rhip.security import masking

__all__ = [
    "Bands",
    "Incoming",
    "LinkRequest",
    "LinkResult",
    "PersonLinks",
    "PersonRead",
    "find_persons",
    "get_person",
    "link_patient_items",
    "link_record",
    "link_records",
    "patient_items",
    "person_links",
    "person_of_record",
]

MAX_LOCAL_ID = 64


def _check_keys(institution_code: str, local_id: str, source: str) -> None:
    if not (institution_code or "").strip():
        raise Invalid("机构代码为空", code="identity-institution-empty")
    if not (local_id or "").strip():
        raise Invalid("机构内患者标识为空", code="identity-local-id-empty")
    if len(local_id) > MAX_LOCAL_ID or len(institution_code) > 32 or len(source) > 32:
        raise Invalid("机构代码、患者标识或来源过长", code="identity-key-too-long")


def _result(x: Linked) -> LinkResult:
    return LinkResult(
        person_id=x.person_id,
        band=x.band,
        probability=round(x.probability, 6),
        record_id=x.record_id,
        candidate_person_id=x.candidate_person_id,
    )


def link_record(
    session: Session,
    *,
    institution_code: str,
    local_id: str,
    id_number: str | None,
    name: str | None,
    birth_date: date | None,
    sex: str | None,
    phone: str | None,
    district: str | None,
    source: str,
    bands: Bands | None = None,
) -> LinkResult:
    """Link one institution's patient record to a person (auto), queue it for review, or make a new person.

    Malformed ID numbers, empty names and absurd dates are linked on what remains, never refused; a
    record already linked (same institution and local id) is updated and re-linked unless a data
    steward pinned it.
    """
    _check_keys(institution_code, local_id, source)
    item = Incoming(
        institution_code=institution_code,
        local_id=local_id,
        source=source,
        id_number=id_number,
        name=name,
        birth_date=birth_date,
        sex=sex,
        phone=phone,
        district=district,
    )
    return _result(link_many(session, [item], bands=bands)[0])


def link_records(
    session: Session, items: Sequence[Incoming], *, bands: Bands | None = None
) -> list[LinkResult]:
    """Link many records at once (one candidate fetch for the batch), in order."""
    for it in items:
        _check_keys(it.institution_code, it.local_id, it.source)
    return [_result(x) for x in link_many(session, items, bands=bands)]


def patient_items(rows: Iterable[Mapping[str, Any]], *, source: str) -> list[Incoming]:
    """Stored patient_info rows (org_code, patient_id, id_number, name, birth_date, sex, phone,
    district_code) as records to link, their match features derived (no database: intake builds them before
    the lock its commits take turns under)."""
    return [
        Incoming(
            institution_code=str(r["org_code"])[:32],
            local_id=str(r["patient_id"])[:MAX_LOCAL_ID],
            source=source[:32],
            id_number=r.get("id_number"),
            name=r.get("name"),
            birth_date=r.get("birth_date"),
            sex=r.get("sex"),
            phone=r.get("phone"),
            district=r.get("district_code"),
        )
        for r in rows
        if r.get("org_code") and r.get("patient_id")
    ]


def link_patient_items(session: Session, items: Sequence[Incoming]) -> int:
    """Link `patient_items`' records in one batch (intake calls this when a batch commits); how many."""
    link_many(session, items)
    return len(items)


def record_read(r: PatientRecord) -> RecordRead:
    """A stored record as the API shows it (unmasked: callers mask by role)."""
    return RecordRead(
        id=r.id,
        person_id=r.person_id,
        institution_code=r.institution_code,
        local_id=r.local_id,
        source=r.source,
        name=r.name_raw,
        sex=r.sex,
        birth_date=r.birth_date,
        id_number=r.id_number or r.id_raw,
        guardian_id=r.guardian_id,
        phone=r.phone,
        district=r.district,
        band=r.band,
        probability=r.probability,
        linked_by=r.linked_by,
        pinned=r.pinned,
        linked_at=r.linked_at,
    )


def _most_common(values: list[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return Counter(vals).most_common(1)[0][0] if vals else None


def get_person(session: Session, *, person_id: str) -> PersonRead:
    """A person with every linked record and what they most often say (NotFound if unknown)."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"主索引中没有此人：{person_id}", code="person-not-found")
    records = list(
        session.scalars(
            select(PatientRecord).where(PatientRecord.person_id == person_id).order_by(PatientRecord.id)
        )
    )
    reads = [record_read(r) for r in records]
    return PersonRead(
        id=person.id,
        status=person.status,
        merged_into=person.merged_into,
        name=_most_common([r.name_raw for r in records]),
        sex=_most_common([r.sex for r in records]),
        birth_date=_most_common([r.birth_date for r in records]),
        id_number=_most_common([r.id_number for r in records]),
        records=reads,
    )


@dataclass(frozen=True)
class PersonLinks:
    """A person's linked records as keys only: (institution, local id) pairs and 18-digit ID numbers."""

    id: str
    keys: tuple[tuple[str, str], ...]
    id_numbers: tuple[str, ...]
    also: Any = None  # the value of the caller's `also` column for the surviving person


def person_links(
    session: Session,
    *,
    person_id: str,
    also: Callable[[ColumnElement[str]], ColumnElement[Any]] | None = None,
    params: Mapping[str, Any] | None = None,
) -> PersonLinks:
    """The surviving person (a merged one points to its survivor) and its records' keys: one indexed read
    per hop, columns only (the record views' EMPI read; NotFound if unknown). `also` adds a column computed
    from the person id (a correlated scalar subquery), read in the same statement: one round trip; its bound
    parameters come in `params`, so `also` is a fixed function and the statement is built once."""
    query = _links_query(also)
    pid = person_id
    for _hop in range(8):  # merges chain at most a few deep; a cycle would be a data error
        rows = session.execute(query, {**(params or {}), "links_person": pid}).all()
        if not rows:
            raise NotFound(f"主索引中没有此人：{pid}", code="person-not-found")
        if rows[0].merged_into:
            pid = rows[0].merged_into
            continue
        keys = tuple((r.institution_code, r.local_id) for r in rows if r.institution_code is not None)
        ids = sorted({r.id_number for r in rows if r.id_number and len(r.id_number) == 18})
        return PersonLinks(pid, keys, tuple(ids), rows[0].also if also is not None else None)
    raise NotFound(f"主索引合并链过长：{person_id}", code="person-not-found")


@lru_cache(maxsize=32)
def _links_query(also: Callable[[ColumnElement[str]], ColumnElement[Any]] | None) -> Select[Any]:
    """person_links' statement, built once per `also` (building it and its cache key cost ~0.4 ms of CPU a
    view; the person is a bound parameter)."""
    extra = [also(Person.id.expression).label("also")] if also is not None else []
    return (
        select(
            Person.merged_into,
            PatientRecord.institution_code,
            PatientRecord.local_id,
            PatientRecord.id_number,
            *extra,
        )
        .select_from(Person)
        .outerjoin(PatientRecord, PatientRecord.person_id == Person.id)
        .where(Person.id == bindparam("links_person"))
    )


def person_of_record(session: Session, *, institution_code: str, local_id: str) -> str | None:
    """The person an institution's patient id is linked to, or None (a merged one: see person_links)."""
    return session.scalar(
        select(PatientRecord.person_id).where(
            PatientRecord.institution_code == institution_code, PatientRecord.local_id == local_id
        )
    )


def find_persons(session: Session, *, id_number: str | None = None, phone: str | None = None) -> list[str]:
    """Persons whose records carry this ID number (15 or 18 digits) and/or phone; most records first."""
    if not id_number and not phone:
        raise Invalid("请提供身份证号码或电话号码", code="identity-query-empty")
    q = select(PatientRecord.person_id, func.count().label("n")).group_by(PatientRecord.person_id)
    if id_number:
        number = feat.parse_id(id_number).number
        if number is None:
            raise Invalid("身份证号码格式不正确（应为 18 位或 15 位）", code="id-format")
        q = q.where(PatientRecord.id_number == number)
    if phone:
        digits = feat.normalise_phone(phone)
        if digits is None:
            raise Invalid("电话号码格式不正确", code="phone-format")
        q = q.where(PatientRecord.phone == digits)
    rows = session.execute(q.order_by(func.count().desc(), PatientRecord.person_id)).all()
    return [str(r[0]) for r in rows]


# ------------------------------------------------------------------ search, masking


def mask_name(name: str | None) -> str | None:
    """张*伟 (three characters), 张* (two), 欧**锋 (four): security.masking's rule."""
    return masking.mask_name(name)


def mask_id(number: str | None) -> str | None:
    """320102********123X: security.masking's rule."""
    return masking.mask_id(number)


def mask_phone(phone: str | None) -> str | None:
    """139****5678: security.masking's rule."""
    return masking.mask_phone(phone)


def shown(person: PersonRead, who: Any) -> PersonRead:
    """The person as this caller may see it (security.masking's "linkage" view: the stewards whole)."""
    m = masking.Masker(who, "linkage")
    if m.whole >= masking.EVERY_KIND:
        return person

    def rec(r: RecordRead) -> RecordRead:
        return r.model_copy(
            update={
                "name": m.value(masking.Kind.name, r.name, r.id_number),
                "id_number": m.id(r.id_number),
                "guardian_id": m.id(r.guardian_id),
                "phone": m.value(masking.Kind.phone, r.phone, r.id_number),
            }
        )

    return person.model_copy(
        update={
            "name": m.value(masking.Kind.name, person.name, person.id_number),
            "id_number": m.id(person.id_number),
            "records": [rec(r) for r in person.records],
        }
    )


def masked(person: PersonRead) -> PersonRead:
    """The person with names, ID numbers and phones masked (for roles without consent to see them)."""
    return shown(person, None)


def query_kind(q: str) -> str:
    """What a search text is: 'id' (digits), 'pinyin' (Latin letters) or 'name'."""
    text = q.strip()
    if text[:1].isdigit():
        return "id"
    if text.isascii():
        return "pinyin"
    return "name"


def search_persons(session: Session, *, q: str, limit: int = 20) -> list[PersonRead]:
    """Persons whose records match a name (exact or starting with), a pinyin (with or without spaces,
    tones ignored) or an ID number (15 or 18 digits, or its first digits)."""
    text = (q or "").strip()
    if not text or len(text) > 40:
        raise Invalid("请输入姓名、拼音或身份证号码（不超过 40 个字符）", code="identity-query-empty")
    kind = query_kind(text)
    cond: Any
    if kind == "id":
        number = feat.parse_id(text).number
        cond = (
            PatientRecord.id_number == number if number else PatientRecord.id_number.startswith(text.upper())
        )
    elif kind == "pinyin":
        letters = "".join(ch for ch in text.lower() if ch.isalpha())
        spaced = " ".join(text.lower().split())
        cond = (PatientRecord.py == spaced) | (func.replace(PatientRecord.py, " ", "") == letters)
    else:
        name = feat.normalise_name(text) or text
        cond = (PatientRecord.name == name) | PatientRecord.name.startswith(name)
    ids = list(
        session.scalars(
            select(PatientRecord.person_id).where(cond).group_by(PatientRecord.person_id).limit(limit)
        )
    )
    return [get_person(session, person_id=pid) for pid in ids]
