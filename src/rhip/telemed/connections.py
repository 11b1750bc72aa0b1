"""Connections of institutions (or sites outside the registry) to the centres, their categories, and the
districts covered derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Conflict, Invalid, NotFound
from rhip.registry import data as reg, directories
from rhip.telemed.limits import centre
from rhip.telemed.models import (
    CATEGORIES,
    Connection,
)

NANJING = "南京市"


def category_of(inst: reg.InstitutionRecord) -> str:
    """The bulletins' connection category of a registered institution."""
    if inst.code.startswith("R"):
        return "对外帮扶"
    if inst.city != NANJING:
        return "都市圈城市"
    if inst.kind == "community_health_centre":
        return "社区"
    if inst.kind in ("hospital", "mch") and inst.level in ("三级", "二级"):
        return "二级以上"
    return "其他"


def institution(code: str) -> reg.InstitutionRecord:
    """A registered institution, or a clear error naming the code."""
    inst = reg.get(code) if code else None
    if inst is None:
        raise Invalid(f"机构代码“{code}”不在注册库中", code="unknown-institution")
    return inst


def connect(
    session: Session,
    *,
    centre_code: str,
    connected_on: date,
    institution_code: str | None = None,
    site_name: str | None = None,
    district: str | None = None,
    city: str = NANJING,
    category: str | None = None,
) -> Connection:
    """Connect a registered institution, or a named site outside the registry, to a centre."""
    centre(centre_code)
    if institution_code:
        inst = institution(institution_code)
        key, name = inst.code, inst.name
        district, city, category = inst.district, inst.city, category or category_of(inst)
        tertiary = inst.level == "三级"
        local = inst.ownership == "区属" or inst.kind in ("community_health_centre", "district_platform")
    else:
        if not site_name or not site_name.strip():
            raise Invalid("请给出机构代码或接入点名称", code="site-required")
        if category not in CATEGORIES:
            raise Invalid(f"未注册接入点须注明类别（{'、'.join(CATEGORIES)}）", code="bad-category")
        if district is not None and reg.district_by(district) is None:
            raise Invalid(f"未知的区：{district}", code="unknown-district")
        key, name, tertiary = f"site:{site_name.strip()}", site_name.strip(), False
        local = district is not None
    if category not in CATEGORIES:
        raise Invalid(f"未知的接入类别：{category}", code="bad-category")
    existing = session.scalar(
        select(Connection).where(Connection.centre_code == centre_code, Connection.site_key == key)
    )
    if existing is not None:
        if existing.disconnected_on is None:
            raise Conflict(f"{name}已接入{centre(centre_code).name}", code="already-connected")
        existing.disconnected_on, existing.connected_on = None, connected_on
        session.flush()
        return existing
    conn = Connection(
        centre_code=centre_code,
        institution_code=institution_code and key,
        site_key=key,
        site_name=name,
        city=city,
        district=district,
        category=category,
        tertiary=tertiary,
        local=local,
        connected_on=connected_on,
    )
    session.add(conn)
    session.flush()
    return conn


def disconnect(session: Session, *, connection_id: int, on: date) -> Connection:
    """End a connection on a day (it stays in the history)."""
    conn = session.get(Connection, connection_id)
    if conn is None:
        raise NotFound(f"没有接入记录 {connection_id}", code="connection-not-found")
    if conn.disconnected_on is not None:
        raise Conflict("该接入已断开", code="already-disconnected")
    if on < conn.connected_on:
        raise Invalid("断开日期早于接入日期", code="bad-date")
    conn.disconnected_on = on
    session.flush()
    return conn


def _active(on: date) -> Any:
    return and_(
        Connection.connected_on <= on,
        or_(Connection.disconnected_on.is_(None), Connection.disconnected_on > on),
    )


def get_all_connections(
    session: Session,
    *,
    centre_code: str | None = None,
    on: date | None = None,
    institution_code: str | None = None,
) -> list[Connection]:
    """Connections active on a day (default today), per centre or institution."""
    day = on or clock.local_now().date()
    stmt = select(Connection).where(_active(day)).order_by(Connection.centre_code, Connection.id)
    if centre_code:
        centre(centre_code)
        stmt = stmt.where(Connection.centre_code == centre_code)
    if institution_code:
        stmt = stmt.where(Connection.institution_code == institution_code)
    return list(session.scalars(stmt))


def is_connected(session: Session, *, centre_code: str, institution_code: str, on: date) -> bool:
    """Whether an institution is connected to a centre on a day."""
    return (
        session.scalar(
            select(Connection.id).where(
                Connection.centre_code == centre_code,
                Connection.institution_code == institution_code,
                _active(on),
            )
        )
        is not None
    )


@dataclass
class Coverage:
    """A centre's connections on a day: totals by category, districts covered and not, cities."""

    centre_code: str
    on: date
    total: int
    by_category: dict[str, int]
    tertiary_nanjing: int
    districts_covered: list[str]
    districts_not_covered: list[str]
    community_districts: list[str]
    cities: list[str]
    metro: int
    hospitals: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def coverage(session: Session, *, centre_code: str, on: date) -> Coverage:
    """Derived from the connections: which districts are covered and which are not."""
    conns = get_all_connections(session, centre_code=centre_code, on=on)
    by_cat = dict.fromkeys(CATEGORIES, 0)
    for c in conns:
        by_cat[c.category] += 1
    order = [d.name for d in reg.districts()]
    covered = {c.district for c in conns if c.city == NANJING and c.district and c.local}
    community = {c.district for c in conns if c.category == "社区" and c.district}
    cities = [NANJING] if any(c.city == NANJING for c in conns) else []
    metro = {c.city for c in conns if c.category == "都市圈城市"} - {NANJING}
    rank = {m.name: i for i, m in enumerate(directories.metro_cities())}
    cities += sorted(metro, key=lambda x: (rank.get(x, len(rank)), x))
    return Coverage(
        centre_code=centre_code,
        on=on,
        total=len(conns),
        by_category=by_cat,
        tertiary_nanjing=sum(1 for c in conns if c.tertiary and c.city == NANJING),
        districts_covered=[d for d in order if d in covered],
        districts_not_covered=[d for d in order if d not in covered],
        community_districts=[d for d in order if d in community],
        cities=cities,
        metro=by_cat["都市圈城市"],
        hospitals=sum(1 for c in conns if c.category != "社区"),
    )
