"""Registry services: load the package data into the database and look institutions up.

Plain functions with keyword arguments; the caller owns the transaction (these never commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from rhip.errors import Invalid, NotFound
from rhip.registry import data, directories, loading
from rhip.registry.models import (
    Channel,
    ChannelAlias,
    Department,
    District,
    HotlineCategory,
    Institution,
    InstitutionAlias,
    MetroCity,
    RegistryMeta,
    TelemedCentre,
)

HASH_KEY = "data_hash"


# ---------------------------------------------------------------- loading


def _upsert(session: Session, model: type[Any], rows: Sequence[dict[str, Any]], *, pk: str = "code") -> None:
    """Insert new rows and update changed ones, keyed by `pk` (Core statements: no ORM state)."""
    table = model.__table__
    existing = {r._mapping[pk]: dict(r._mapping) for r in session.execute(select(table))}
    for row in rows:
        old = existing.get(row[pk])
        if old is None:
            session.execute(insert(table).values(**row))
        elif any(old.get(k) != v for k, v in row.items()):
            session.execute(update(table).where(table.c[pk] == row[pk]).values(**row))


def _institution_row(r: data.InstitutionRecord) -> dict[str, Any]:
    return {
        "code": r.code,
        "name": r.name,
        "name_key": loading.normalize_name(r.name),
        "level": r.level,
        "ownership": r.ownership,
        "kind": r.kind,
        "district_code": r.district_code,
        "city": r.city,
        "tertiary": r.tertiary,
        "parent_code": r.parent_code,
        "upload_route": r.upload_route,
        "active": True,
        "joined_on": r.joined_on,
        "left_on": r.left_on,
        "note": r.note,
        "sort_order": r.sort_order,
    }


def load(session: Session) -> dict[str, int]:
    """Upsert every registry data file into the tables (idempotent); returns 类别 → 数量."""
    _upsert(
        session,
        District,
        [
            {
                "code": d.code,
                "name": d.name,
                "short_name": d.short_name,
                "platform_code": d.platform_code,
                "synthetic_code": d.synthetic_code,
                "sort_order": d.sort_order,
            }
            for d in data.districts()
        ],
    )
    _upsert(
        session,
        MetroCity,
        [
            {
                "code": c.code,
                "name": c.name,
                "province": c.province,
                "scope": c.scope,
                "aliases": list(c.aliases),
                "sort_order": c.sort_order,
            }
            for c in directories.metro_cities()
        ],
    )
    records = data.institutions()
    # aliases are rebuilt wholesale: an alias may move between institutions, and nothing refers to alias ids
    session.execute(delete(InstitutionAlias))
    # names are unique: park renamed rows under their code first so a name can move between institutions
    known: dict[str, str] = {
        code: name for code, name in session.execute(select(Institution.code, Institution.name))
    }
    for r in records:
        if r.code in known and known[r.code] != r.name:
            session.execute(
                update(Institution)
                .where(Institution.code == r.code)
                .values(name="~" + r.code, name_key="~" + r.code.lower())
            )
    # parents come first in data.institutions(), so the immediate self foreign key holds row by row
    _upsert(session, Institution, [_institution_row(r) for r in records])
    codes = [r.code for r in records]
    session.execute(update(Institution).where(Institution.code.not_in(codes)).values(active=False))
    alias_rows = [
        {"institution_code": r.code, "alias": a, "key": loading.normalize_name(a)}
        for r in records
        for a in data.institution_aliases(r)
    ]
    if alias_rows:
        session.execute(insert(InstitutionAlias), alias_rows)

    departments = directories.departments()
    _upsert(
        session,
        Department,
        [
            {"code": d.code, "name": d.name, "parent_code": d.parent_code, "sort_order": d.sort_order}
            for d in departments
        ],
    )
    channels = directories.channels()
    session.execute(delete(ChannelAlias))
    _upsert(
        session,
        Channel,
        [{"code": c.code, "name": c.name, "group": c.group, "sort_order": c.sort_order} for c in channels],
    )
    channel_alias_rows = [
        {"channel_code": c.code, "alias": a, "key": loading.normalize_name(a)}
        for c in channels
        for a in directories.channel_aliases(c)
    ]
    if channel_alias_rows:
        session.execute(insert(ChannelAlias), channel_alias_rows)
    _upsert(
        session,
        HotlineCategory,
        [
            {
                "code": h.code,
                "name": h.name,
                "kind": h.kind,
                "unit": h.unit,
                "aliases": list(h.aliases),
                "sort_order": h.sort_order,
            }
            for h in directories.hotline_categories()
        ],
    )
    _upsert(
        session,
        TelemedCentre,
        [
            {
                "code": t.code,
                "name": t.name,
                "centre_name": t.centre_name,
                "hub_code": t.hub_code,
                "started_year": t.started_year,
                "aliases": list(t.aliases),
                "sort_order": t.sort_order,
            }
            for t in data.telemed_centres()
        ],
    )
    _upsert(session, RegistryMeta, [{"key": HASH_KEY, "value": data.data_hash()}], pk="key")
    session.flush()
    session.expire_all()
    return {
        "行政区": len(data.districts()),
        "机构": len(records),
        "机构别名": len(alias_rows),
        "科室": len(departments),
        "预约渠道": len(channels),
        "渠道别名": len(channel_alias_rows),
        "热线分类": len(directories.hotline_categories()),
        "远程医疗中心": len(data.telemed_centres()),
        "都市圈城市": len(directories.metro_cities()),
    }


def prepare(database_url: str) -> None:
    """Upgrade the schema to heads and make sure the registry is loaded (what every command needs first)."""
    from rhip.db.engine import Database, upgrade

    upgrade(database_url)
    db = Database(database_url)
    try:
        with db.session() as s, s.begin():
            ensure_loaded(s)
    finally:
        db.dispose()


def ensure_loaded(session: Session) -> None:
    """Load the registry when the institutions table is empty or the data files changed."""
    n = session.scalar(select(func.count()).select_from(Institution)) or 0
    stored = session.get(RegistryMeta, HASH_KEY)
    if n == 0 or stored is None or stored.value != data.data_hash():
        load(session)


def _count(session: Session, stmt: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def counts(session: Session) -> dict[str, int]:
    """What the database holds: 类别 → 数量 (active institutions only)."""
    active = select(Institution.code).where(Institution.active.is_(True))
    by_kind = dict(
        session.execute(
            select(Institution.kind, func.count())
            .where(Institution.active.is_(True))
            .group_by(Institution.kind)
        ).all()
    )
    nanjing_collected = active.where(
        Institution.city == data.CITY,
        Institution.kind.in_(("hospital", "mch")),
        Institution.upload_route.in_(("direct", "district")),
    )
    return {
        "行政区": _count(session, select(District.code)),
        "机构": _count(session, active),
        "医院": int(by_kind.get("hospital", 0)),
        "妇幼保健机构": int(by_kind.get("mch", 0)),
        "社区卫生服务中心": int(by_kind.get("community_health_centre", 0)),
        "区平台": int(by_kind.get("district_platform", 0)),
        "其他机构": int(by_kind.get("other", 0)),
        "采集三级医疗机构": _count(session, nanjing_collected.where(Institution.tertiary.is_(True))),
        "采集二级医疗机构": _count(session, nanjing_collected.where(Institution.level == "二级")),
        "机构别名": _count(session, select(InstitutionAlias.id)),
        "科室": _count(session, select(Department.code)),
        "预约渠道": _count(session, select(Channel.code)),
        "热线分类": _count(session, select(HotlineCategory.code)),
        "远程医疗中心": _count(session, select(TelemedCentre.code)),
        "都市圈城市": _count(session, select(MetroCity.code)),
    }


# ---------------------------------------------------------------- institutions


def get_institution(session: Session, *, code: str) -> Institution:
    """The institution with this code (NotFound otherwise)."""
    inst = session.get(Institution, loading.normalize_code(code))
    if inst is None:
        raise NotFound(f"机构代码不存在：{code}", code="institution-not-found")
    return inst


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rank(inst: Institution, *, qcode: str, key: str, candidates: list[str]) -> tuple[int, int, int, int]:
    """Exact code, then exact name/alias (in candidate order), then code prefix, then substring."""
    if inst.code == qcode:
        return (0, 0, 0, inst.sort_order)
    names = [inst.name_key, *(a.key for a in inst.aliases)]
    for i, cand in enumerate(candidates):
        if cand in names:
            return (1, i, 0 if cand == inst.name_key else 1, inst.sort_order)
    if inst.code.startswith(qcode):
        return (2, 0, 0, inst.sort_order)
    starts = any(n.startswith(key) for n in names)
    return (3, 0 if starts else 1, len(inst.name), inst.sort_order)


def get_all_institutions(
    session: Session,
    *,
    q: str | None = None,
    district: str | None = None,
    level: str | None = None,
    kind: str | None = None,
    city: str | None = None,
    limit: int = 50,
    offset: int = 0,
    include_inactive: bool = False,
) -> tuple[list[Institution], int]:
    """A page of institutions and the total; `q` matches code, name or alias (exact matches first)."""
    stmt = select(Institution)
    if not include_inactive:
        stmt = stmt.where(Institution.active.is_(True))
    if district:
        record = data.district_by(district)
        if record is None:
            raise Invalid(f"未知的行政区：{district}", code="bad-district")
        stmt = stmt.where(Institution.district_code == record.code)
    if level:
        if level not in data.LEVELS:
            raise Invalid(f"未知的机构等级：{level}（可选：{'、'.join(data.LEVELS)}）", code="bad-level")
        stmt = stmt.where(Institution.level == level)
    if kind:
        if kind not in data.KINDS:
            raise Invalid(f"未知的机构类别：{kind}（可选：{'、'.join(data.KINDS)}）", code="bad-kind")
        stmt = stmt.where(Institution.kind == kind)
    if city:
        stmt = stmt.where(Institution.city == _city_name(city))
    limit = max(1, limit)
    offset = max(0, offset)
    text = (q or "").strip()
    if not text:
        total = _count(session, stmt.with_only_columns(Institution.code))
        rows = session.scalars(stmt.order_by(Institution.sort_order).limit(limit).offset(offset)).all()
        return list(rows), total
    key = loading.normalize_name(text)
    candidates = loading.candidate_keys(text)
    qcode = loading.normalize_code(text)
    like = f"%{_escape_like(key)}%"
    alias_hits = select(InstitutionAlias.institution_code).where(
        or_(InstitutionAlias.key.in_(candidates), InstitutionAlias.key.like(like, escape="\\"))
    )
    stmt = stmt.where(
        or_(
            Institution.code == qcode,
            Institution.code.like(_escape_like(qcode) + "%", escape="\\"),
            Institution.name_key.in_(candidates),
            Institution.name_key.like(like, escape="\\"),
            Institution.code.in_(alias_hits),
        )
    )
    found = list(session.scalars(stmt).unique().all())
    found.sort(key=lambda inst: _rank(inst, qcode=qcode, key=key, candidates=candidates))
    return found[offset : offset + limit], len(found)


def _city_name(text: str) -> str:
    """The registry's spelling of a city ("芜湖" → "芜湖市"; unknown names pass through)."""
    key = loading.normalize_name(text)
    if key in (loading.normalize_name(data.CITY), "南京"):
        return data.CITY
    for c in directories.metro_cities():
        if key in {loading.normalize_name(n) for n in (c.name, *c.aliases)}:
            return c.name
    return text.strip()


def get_branches(session: Session, *, code: str) -> list[Institution]:
    """The branches (分院、院区、医疗区) whose parent is this institution."""
    stmt = select(Institution).where(Institution.parent_code == code).order_by(Institution.sort_order)
    return list(session.scalars(stmt).all())


# ---------------------------------------------------------------- districts and reference lists


def get_all_districts(session: Session) -> list[District]:
    """The 12 districts in the bulletins' order."""
    return list(session.scalars(select(District).order_by(District.sort_order)).all())


def get_district(session: Session, code_or_name: str) -> District:
    """A district by code ("320115"), name ("江宁区"), short name ("江宁") or platform code (NotFound)."""
    record = data.district_by(code_or_name)
    found = session.get(District, record.code) if record else None
    if found is None:
        raise NotFound(f"行政区不存在：{code_or_name}", code="district-not-found")
    return found


def district_counts(session: Session) -> dict[str, dict[str, int]]:
    """Per district code: active institutions by kind, plus "total" and "tertiary"."""
    out: dict[str, dict[str, int]] = {d.code: {"total": 0, "tertiary": 0} for d in get_all_districts(session)}
    rows = session.execute(
        select(Institution.district_code, Institution.kind, Institution.tertiary, func.count())
        .where(Institution.active.is_(True), Institution.district_code.is_not(None))
        .group_by(Institution.district_code, Institution.kind, Institution.tertiary)
    ).all()
    for district_code, kind, tertiary, n in rows:
        bucket = out.setdefault(str(district_code), {"total": 0, "tertiary": 0})
        bucket[kind] = bucket.get(kind, 0) + int(n)
        bucket["total"] += int(n)
        if tertiary:
            bucket["tertiary"] += int(n)
    return out


def get_all_departments(session: Session) -> list[Department]:
    """Clinical departments, parents before their sub-specialities."""
    return list(session.scalars(select(Department).order_by(Department.sort_order)).all())


def get_all_channels(session: Session) -> list[Channel]:
    """Booking channels in the bulletins' order."""
    return list(session.scalars(select(Channel).order_by(Channel.sort_order)).all())


def get_all_hotline_categories(session: Session) -> list[HotlineCategory]:
    """12320 hotline call categories and work-order sources."""
    return list(session.scalars(select(HotlineCategory).order_by(HotlineCategory.sort_order)).all())


def get_all_telemed_centres(session: Session) -> list[TelemedCentre]:
    """The five telemedicine centres with their hub hospitals."""
    return list(session.scalars(select(TelemedCentre).order_by(TelemedCentre.sort_order)).all())


def get_all_metro_cities(session: Session) -> list[MetroCity]:
    """The metropolitan-area cities other than Nanjing."""
    return list(session.scalars(select(MetroCity).order_by(MetroCity.sort_order)).all())


def metro_city_counts(session: Session) -> dict[str, int]:
    """Active institutions per metropolitan-area city name."""
    rows = session.execute(
        select(Institution.city, func.count())
        .where(Institution.active.is_(True), Institution.city != data.CITY)
        .group_by(Institution.city)
    ).all()
    return {city: int(n) for city, n in rows}
