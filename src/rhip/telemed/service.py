# ruff: noqa: E501
"""Telemedicine services: connections, the request → report workflow of the five centres (FHIR
ServiceRequest + Task, result DiagnosticReport), worklists, turnaround times, members and events.
Services take a Session and keyword arguments, never commit, and raise rhip.errors exceptions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Select, and_, func, or_, select, text
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.identity import service as identity
from rhip.registry import data as reg, directories
from rhip.registry.idnumber import validate_id
from rhip.security import service as security
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed import delivery
from rhip.telemed.models import (
    CATEGORIES,
    OPEN_STATUSES,
    Connection,
    Event,
    History,
    Member,
    Report,
    Request,
    TatLimit,
)
from rhip.telemed.workflow import LABELS, Tat, check_transition, summarise

DATA = Path(__file__).parent / "data"
CENTRE_CODES = ("consult", "imaging", "ecg", "lab", "pathology")
PRIORITY_ORDER = {"stat": 0, "urgent": 1, "routine": 2}
NANJING = "南京市"
OPEN_SQL = text("telemed_requests.status IN ('requested', 'accepted', 'in_progress')")


# ------------------------------------------------------------------ centres and limits


def centre(code: str) -> reg.TelemedCentreRecord:
    """The registry's record of a centre, or NotFound."""
    for c in reg.telemed_centres():
        if c.code == code:
            return c
    raise NotFound(f"没有远程医疗中心“{code}”（可选：{'、'.join(CENTRE_CODES)}）", code="unknown-centre")


@lru_cache(maxsize=1)
def default_limits() -> dict[str, list[dict[str, Any]]]:
    """The shipped turnaround limits (data/limits.yaml)."""
    raw = yaml.safe_load((DATA / "limits.yaml").read_text(encoding="utf-8"))
    return {str(k): list(v) for k, v in raw.items()}


def default_limits_types(centre_code: str) -> set[str]:
    """The service types a centre offers by default."""
    return {str(r["type"]) for r in default_limits().get(centre_code, [])}


def ensure_limits(session: Session) -> None:
    """Insert the shipped limits that the table does not hold yet (edited ones are kept)."""
    have = {(t.centre_code, t.service_type) for t in session.scalars(select(TatLimit))}
    for code, rows in default_limits().items():
        for row in rows:
            if (code, row["type"]) not in have:
                session.add(
                    TatLimit(
                        centre_code=code,
                        service_type=row["type"],
                        label=row["label"],
                        limit_minutes=int(row["minutes"]),
                    )
                )
    session.flush()


def get_limits(session: Session, *, centre_code: str | None = None) -> list[TatLimit]:
    """The turnaround limits, per centre and service type (the shipped ones are added when missing)."""
    stmt = select(TatLimit).order_by(TatLimit.centre_code, TatLimit.service_type)
    if centre_code:
        centre(centre_code)
        stmt = stmt.where(TatLimit.centre_code == centre_code)
    rows = list(session.scalars(stmt))
    shipped = {
        (c, str(r["type"]))
        for c, rs in default_limits().items()
        for r in rs
        if c == centre_code or not centre_code
    }
    if not shipped <= {(x.centre_code, x.service_type) for x in rows}:
        ensure_limits(session)
        rows = list(session.scalars(stmt))
    return rows


def get_limit(session: Session, *, centre_code: str, service_type: str) -> TatLimit:
    """One service type's limit; Invalid when the centre does not offer that type."""
    found = session.get(TatLimit, (centre_code, service_type))
    if found is not None:
        return found
    for lim in get_limits(session, centre_code=centre_code):
        if lim.service_type == service_type:
            return lim
    types = "、".join(f"{x.service_type}（{x.label}）" for x in get_limits(session, centre_code=centre_code))
    raise Invalid(
        f"{centre(centre_code).name}中心没有服务类型“{service_type}”（可选：{types}）",
        code="unknown-service-type",
    )


def set_limit(
    session: Session, *, centre_code: str, service_type: str, label: str, limit_minutes: int
) -> TatLimit:
    """Create or change a service type's turnaround limit."""
    centre(centre_code)
    if limit_minutes < 1 or limit_minutes > 60 * 24 * 60:
        raise Invalid("时限应在 1 分钟到 60 天之间", code="bad-limit")
    ensure_limits(session)
    lim = session.get(TatLimit, (centre_code, service_type))
    if lim is None:
        lim = TatLimit(
            centre_code=centre_code, service_type=service_type, label=label, limit_minutes=limit_minutes
        )
        session.add(lim)
    else:
        lim.label, lim.limit_minutes = label or lim.label, limit_minutes
    session.flush()
    return lim


# ------------------------------------------------------------------ connections


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


# ------------------------------------------------------------------ requests (ServiceRequest + Task)


def _patient(
    id_number: str | None, birth_date: date | None, sex: str | None
) -> tuple[str | None, date | None, str | None]:
    if not id_number:
        return None, birth_date, sex
    check = validate_id(id_number, birth_date=birth_date, sex=sex)
    if not check.ok:
        raise Invalid("身份证号码有误：" + "；".join(m for _r, m in check.errors), code="bad-id-number")
    return check.normalized, birth_date or check.birth_date, sex or check.sex


def create_request(
    session: Session,
    *,
    centre_code: str,
    service_type: str,
    requester_code: str,
    actor: str,
    requester_name: str | None = None,
    patient_id_number: str | None = None,
    patient_local_id: str | None = None,
    patient_name: str | None = None,
    patient_sex: str | None = None,
    patient_birth_date: date | None = None,
    reason: str | None = None,
    priority: str = "routine",
    department: str | None = None,
    performer_code: str | None = None,
    scheduled_at: datetime | None = None,
    at: datetime | None = None,
    source: str = "api",
    connected_checked: bool = False,
) -> Request:
    """File a request with a centre (ServiceRequest) and open its Task in state requested."""
    c = centre(centre_code)
    get_limit(session, centre_code=centre_code, service_type=service_type)
    inst = institution(requester_code)
    when = at or clock.now()
    if not connected_checked and not is_connected(
        session,
        centre_code=centre_code,
        institution_code=inst.code,
        on=when.astimezone(clock.SHANGHAI).date(),
    ):
        raise Conflict(f"{inst.name}尚未接入{c.name}平台，不能提交申请", code="not-connected")
    if priority not in PRIORITY_ORDER:
        raise Invalid("优先级应为 routine、urgent 或 stat", code="bad-priority")
    performer = institution(performer_code) if performer_code else institution(c.hub_code)
    if not (patient_id_number or patient_local_id):
        raise Invalid("请提供患者身份证号或本院患者号", code="patient-required")
    if patient_sex is not None and patient_sex not in ("1", "2", "9"):
        raise Invalid("性别代码应为 1（男）、2（女）或 9（未说明）", code="bad-sex")
    pid, born, sex = _patient(patient_id_number, patient_birth_date, patient_sex)
    if centre_code == "consult" and scheduled_at is not None and scheduled_at < when - timedelta(minutes=1):
        raise Invalid("会诊时间不能早于申请时间", code="bad-schedule")
    req = Request(
        centre_code=centre_code,
        service_type=service_type,
        priority=priority,
        requester_code=inst.code,
        requester_name=requester_name,
        performer_code=performer.code,
        department=department,
        patient_id_number=pid,
        patient_local_id=patient_local_id,
        patient_name=patient_name,
        patient_sex=sex,
        patient_birth_date=born,
        reason=reason,
        scheduled_at=scheduled_at,
        status="requested",
        requested_at=when,
        source=source,
    )
    session.add(req)
    session.flush()
    session.add(History(request_id=req.id, from_status=None, to_status="requested", actor=actor, at=when))
    # the EMPI links the requester's patient to a person (the request carries the person from then on)
    linked = identity.link_record(
        session,
        institution_code=inst.code,
        local_id=patient_local_id or f"telemed:{pid}",
        id_number=pid,
        name=patient_name,
        birth_date=born,
        sex=sex,
        phone=None,
        district=inst.district,
        source="telemed",
    )
    req.person_id = linked.person_id
    return req


def get_request(session: Session, *, request_id: int) -> Request:
    """One request, or NotFound."""
    req = session.get(Request, request_id)
    if req is None:
        raise NotFound(f"没有远程医疗申请 {request_id}", code="request-not-found")
    return req


def transition(
    session: Session,
    *,
    request_id: int,
    to: str,
    actor: str,
    reason: str | None = None,
    assignee: str | None = None,
    at: datetime | None = None,
    lock: bool = True,
) -> Request:
    """Move a request's Task to another state; illegal moves are Conflict (409)."""
    if lock:
        req = session.scalar(select(Request).where(Request.id == request_id).with_for_update())
    else:
        req = session.get(Request, request_id)
    if req is None:
        raise NotFound(f"没有远程医疗申请 {request_id}", code="request-not-found")
    check_transition(req.status, to, reason)
    when = at or clock.now()
    if when < req.requested_at:
        raise Invalid("状态变更时间早于申请时间", code="bad-time")
    session.add(
        History(request_id=req.id, from_status=req.status, to_status=to, actor=actor, reason=reason, at=when)
    )
    req.status = to
    if to == "accepted":
        req.accepted_at = when
        req.assignee = assignee or req.assignee
    elif to == "in_progress":
        req.started_at = when
        req.assignee = assignee or req.assignee or actor
    else:
        req.ended_at = when
        req.status_reason = reason
        req.notified_at = when  # the requester's status list shows it from now on
    return req


def report(
    session: Session,
    *,
    request_id: int,
    findings: str,
    conclusion: str,
    author: str,
    critical: bool = False,
    at: datetime | None = None,
) -> Report:
    """The expert's DiagnosticReport: completes the Task (an accepted one is started first)."""
    if not conclusion.strip() or not findings.strip():
        raise Invalid("报告须包含所见与结论", code="report-empty")
    req = get_request(session, request_id=request_id)
    when = at or clock.now()
    if req.status == "accepted":
        transition(session, request_id=request_id, to="in_progress", actor=author, at=when)
    transition(session, request_id=request_id, to="completed", actor=author, at=when)
    rep = Report(
        request_id=req.id,
        findings=findings.strip(),
        conclusion=conclusion.strip(),
        critical=critical,
        author=author,
        issued_at=when,
        status="final",
        version=1,
    )
    session.add(rep)
    session.flush()
    delivery.enqueue(session, req=req, rep=rep)  # into the shared record, in this same transaction
    return rep


def amend_report(
    session: Session,
    *,
    request_id: int,
    findings: str,
    conclusion: str,
    reason: str,
    author: str,
    critical: bool | None = None,
    at: datetime | None = None,
) -> Report:
    """Correct a final report (DiagnosticReport.status amended, next version, sent again with 修改标志 2)."""
    if not conclusion.strip() or not findings.strip():
        raise Invalid("报告须包含所见与结论", code="report-empty")
    if not reason.strip():
        raise Invalid("修改报告必须说明原因", code="reason-required")
    req = get_request(session, request_id=request_id)
    rep = session.scalar(select(Report).where(Report.request_id == request_id).with_for_update())
    if rep is None:
        raise Conflict("该申请尚无报告，不能修改", code="no-report")
    when = at or clock.now()
    if when < rep.issued_at:
        raise Invalid("修改时间早于报告时间", code="bad-time")
    rep.findings, rep.conclusion = findings.strip(), conclusion.strip()
    if critical is not None:
        rep.critical = critical
    rep.status, rep.version, rep.amended_at, rep.amend_reason = (
        "amended",
        rep.version + 1,
        when,
        reason.strip(),
    )
    session.add(
        History(
            request_id=req.id,
            from_status=req.status,
            to_status=req.status,
            actor=author,
            reason=f"修改报告（第 {rep.version} 版）：{reason.strip()}"[:256],
            at=when,
        )
    )
    session.flush()
    delivery.enqueue(session, req=req, rep=rep)
    return rep


def get_report(session: Session, *, request_id: int) -> Report | None:
    """The report of a request, if written."""
    return session.scalar(select(Report).where(Report.request_id == request_id))


def get_report_by_id(session: Session, *, report_id: int) -> Report:
    """One DiagnosticReport, or NotFound."""
    rep = session.get(Report, report_id)
    if rep is None:
        raise NotFound(f"没有诊断报告 {report_id}", code="report-not-found")
    return rep


def get_history(session: Session, *, request_id: int) -> list[History]:
    """The Task's transitions, oldest first."""
    return list(session.scalars(select(History).where(History.request_id == request_id).order_by(History.id)))


def may_work(actor_institution: str | None, req: Request) -> bool:
    """Whether staff of an institution may work on the request (the performing hub)."""
    return actor_institution is not None and actor_institution == req.performer_code


def may_see(actor_institution: str | None, req: Request) -> bool:
    """Whether staff of an institution may see the request (requester or performer)."""
    return actor_institution is not None and actor_institution in (req.requester_code, req.performer_code)


def check_worker(actor_institution: str | None, req: Request) -> None:
    """Forbidden unless the actor belongs to the performing centre's hospital."""
    if not may_work(actor_institution, req):
        raise Forbidden("只有承担该中心业务的医院的医生可以处理此申请", code="not-performer")


@dataclass(frozen=True)
class WorkItem:
    """One open task on a centre's worklist (a row of WORK_COLUMNS), with its deadline and overdue flag."""

    request: Any
    due_at: datetime
    overdue: bool


# what a worklist row shows: read as plain rows (no ORM objects: a page of 50 cost more to build than to find)
WORK_COLUMNS = tuple(
    getattr(Request, c)
    for c in (
        "id", "centre_code", "service_type", "priority", "requester_code", "requester_name", "performer_code",
        "department", "patient_id_number", "patient_name", "patient_sex", "patient_birth_date", "person_id",
        "reason", "scheduled_at", "status", "status_reason", "assignee", "requested_at", "accepted_at",
        "started_at", "ended_at",
    )
)  # fmt: skip


def search_requests(
    session: Session,
    *,
    centre_code: str | None = None,
    requester_code: str | None = None,
    performer_code: str | None = None,
    statuses: list[str] | None = None,
    service_type: str | None = None,
    patient_id_number: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Request]:
    """Requests matching every given filter, newest first."""
    stmt: Select[tuple[Request]] = select(Request)
    if centre_code:
        centre(centre_code)
        stmt = stmt.where(Request.centre_code == centre_code)
    if requester_code:
        stmt = stmt.where(Request.requester_code == requester_code)
    if performer_code:
        stmt = stmt.where(Request.performer_code == performer_code)
    if statuses:
        bad = [s for s in statuses if s not in LABELS]
        if bad:
            raise Invalid(f"未知的任务状态：{'、'.join(bad)}", code="bad-status")
        stmt = stmt.where(Request.status.in_(statuses))
    if service_type:
        stmt = stmt.where(Request.service_type == service_type)
    if patient_id_number:
        stmt = stmt.where(Request.patient_id_number == patient_id_number.upper())
    if since:
        stmt = stmt.where(Request.requested_at >= since)
    if until:
        stmt = stmt.where(Request.requested_at < until)
    stmt = (
        stmt.order_by(Request.requested_at.desc(), Request.id.desc()).limit(min(limit, 1000)).offset(offset)
    )
    return list(session.scalars(stmt))


def worklist_query(
    *,
    centre_code: str,
    statuses: tuple[str, ...] = OPEN_STATUSES,
    service_type: str | None = None,
    limit: int = 50,
    after: tuple[datetime, int] | None = None,
) -> Select[Any]:
    """The worklist's SELECT: a range of the partial index of open tasks read in order (no sort, no
    closed task walked, no total counted), keyset-paged on (requested_at, id)."""
    # the open statuses as literal SQL: only then can SQLite and PostgreSQL prove the partial index applies
    in_states = OPEN_SQL if tuple(statuses) == OPEN_STATUSES else Request.status.in_(statuses)
    stmt = select(*WORK_COLUMNS).where(Request.centre_code == centre_code, in_states)
    if service_type:
        stmt = stmt.where(Request.service_type == service_type)
    if after:
        stmt = stmt.where(
            or_(
                Request.requested_at > after[0], and_(Request.requested_at == after[0], Request.id > after[1])
            )
        )
    return stmt.order_by(Request.requested_at, Request.id).limit(min(max(limit, 1), 500))


def worklist(
    session: Session,
    *,
    centre_code: str,
    statuses: tuple[str, ...] = OPEN_STATUSES,
    service_type: str | None = None,
    limit: int = 50,
    after: tuple[datetime, int] | None = None,
) -> list[WorkItem]:
    """A centre's open tasks, oldest first (keyset paging on requested_at, id), each with its deadline."""
    centre(centre_code)
    limits: dict[str, int] = {
        t: m
        for t, m in session.execute(
            select(TatLimit.service_type, TatLimit.limit_minutes).where(TatLimit.centre_code == centre_code)
        )
    }
    stmt = worklist_query(
        centre_code=centre_code, statuses=statuses, service_type=service_type, limit=limit, after=after
    )
    t = clock.now()
    out = []
    for req in session.execute(stmt):
        due = req.requested_at + timedelta(minutes=limits.get(req.service_type, 1440))
        out.append(WorkItem(request=req, due_at=due, overdue=due < t))
    return out


def tat(session: Session, *, centre_code: str | None, since: datetime, until: datetime) -> list[Tat]:
    """Turnaround (request to report, minutes) of the requests completed in [since, until), per type."""
    rows = session.execute(
        select(Request.centre_code, Request.service_type, Request.requested_at, Request.ended_at).where(
            Request.status == "completed",
            Request.ended_at >= since,
            Request.ended_at < until,
            *([Request.centre_code == centre_code] if centre_code else []),
        )
    ).all()
    durations: dict[tuple[str, str], list[float]] = {}
    for code, stype, start, end in rows:
        if end is not None:
            durations.setdefault((code, stype), []).append((end - start).total_seconds() / 60)
    out = []
    for lim in get_limits(session, centre_code=centre_code):
        mins = durations.get((lim.centre_code, lim.service_type), [])
        out.append(summarise(lim.centre_code, lim.service_type, lim.label, mins, lim.limit_minutes))
    return out


def overdue_open(session: Session, *, centre_code: str) -> int:
    """Open tasks past their deadline now."""
    n = 0
    t = clock.now()
    for lim in get_limits(session, centre_code=centre_code):
        n += (
            session.scalar(
                select(func.count()).where(
                    Request.centre_code == centre_code,
                    Request.service_type == lim.service_type,
                    Request.status.in_(OPEN_STATUSES),
                    Request.requested_at < t - timedelta(minutes=lim.limit_minutes),
                )
            )
            or 0
        )
    return n


COUNT_CAP = 1000


def open_counts(session: Session, *, centre_code: str, cap: int = COUNT_CAP) -> dict[str, int]:
    """Open tasks per state, each counted only up to cap + 1 (a worklist says "1000+", it never walks
    100,000 open tasks to print a number): index-only on (centre, status, requested_at)."""
    out = {}
    for st in OPEN_STATUSES:
        some = (
            select(Request.id)
            .where(Request.centre_code == centre_code, Request.status == st)
            .limit(cap + 1)
            .subquery()
        )
        out[st] = int(session.scalar(select(func.count()).select_from(some)) or 0)
    return out


def status_counts(session: Session, *, centre_code: str) -> dict[str, int]:
    """How many of a centre's requests stand in each state."""
    rows = session.execute(
        select(Request.status, func.count())
        .where(Request.centre_code == centre_code)
        .group_by(Request.status)
    ).all()
    counts = dict.fromkeys(LABELS, 0)
    counts.update({s: int(n) for s, n in rows})
    return counts


# ------------------------------------------------------------------ members and events


def add_member(
    session: Session,
    *,
    centre_code: str,
    name: str,
    institution_code: str,
    role: str,
    joined_on: date,
    specialty: str | None = None,
) -> Member:
    """Register an expert or doctor with a centre."""
    centre(centre_code)
    institution(institution_code)
    if role not in ("expert", "doctor"):
        raise Invalid("角色应为 expert（专家）或 doctor（医生）", code="bad-role")
    m = Member(
        centre_code=centre_code,
        name=name,
        institution_code=institution_code,
        role=role,
        specialty=specialty,
        joined_on=joined_on,
    )
    session.add(m)
    session.flush()
    return m


def get_all_members(session: Session, *, centre_code: str, on: date | None = None) -> list[Member]:
    """A centre's experts and doctors (joined by a day)."""
    stmt = select(Member).where(Member.centre_code == centre_code).order_by(Member.role, Member.id)
    if on:
        stmt = stmt.where(Member.joined_on <= on)
    return list(session.scalars(stmt))


def add_event(
    session: Session,
    *,
    centre_code: str,
    kind: str,
    title: str,
    held_at: datetime,
    host: str | None = None,
    attendees: int = 0,
    case_ids: list[int] | None = None,
) -> Event:
    """Record a case-discussion meeting or a video lecture of a centre."""
    centre(centre_code)
    if kind not in ("meeting", "lecture"):
        raise Invalid("活动类型应为 meeting（病例讨论会议）或 lecture（视频讲座）", code="bad-kind")
    if not title.strip():
        raise Invalid("请填写活动主题", code="title-required")
    for cid in case_ids or []:
        if get_request(session, request_id=cid).centre_code != centre_code:
            raise Invalid(f"病例 {cid} 不属于该中心", code="bad-case")
    ev = Event(
        centre_code=centre_code,
        kind=kind,
        title=title.strip(),
        held_at=held_at,
        host=host,
        attendees=attendees,
        case_ids=case_ids,
    )
    session.add(ev)
    session.flush()
    return ev


def get_all_events(
    session: Session, *, centre_code: str, since: datetime | None = None, until: datetime | None = None
) -> list[Event]:
    """A centre's meetings and lectures in a window."""
    stmt = select(Event).where(Event.centre_code == centre_code).order_by(Event.held_at)
    if since:
        stmt = stmt.where(Event.held_at >= since)
    if until:
        stmt = stmt.where(Event.held_at < until)
    return list(session.scalars(stmt))


def mask_name(name: str | None) -> str | None:
    """A name with all but its first character hidden."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


def mask_id(number: str | None) -> str | None:
    """An ID number with its birth date and sequence hidden."""
    if not number:
        return number
    return number[:6] + "*" * 8 + number[-4:]


# ------------------------------------------------------------------ acting as a caller (API and pages)

STAFF_ROLES = (Role.manager, Role.admin)


def audit_read(session: Session, *, who: Principal, action: str, target: str) -> None:
    """Record that a clinician read patients' requests."""
    security.audit(
        session,
        actor=who.subject,
        role=who.role.value,
        action=action,
        target=target,
        institution_code=who.institution_code,
    )


_SQLITE_WRITER = threading.Lock()


@contextmanager
def short_write(session: Session) -> Iterator[None]:
    """A short write transaction after the reads (an audit row): on SQLite, this process's writers queue on
    a lock instead of in SQLite's busy handler, whose growing sleeps (up to 100 ms a try) made a read page
    that writes one audit row wait ten times longer than its work under concurrent readers."""
    if session.get_bind().dialect.name != "sqlite":
        with session.begin():
            yield
        return
    with _SQLITE_WRITER, session.begin():
        yield


def audit_worklist(session: Session, *, who: Principal, centre_code: str, count: int) -> None:
    """Record that a clinician read a page of a centre's worklist (patients' names and ID numbers)."""
    if count:
        audit_read(
            session, who=who, action="telemed.worklist.read", target=f"{centre_code}: {count} requests"
        )


def open_clinical(session: Session, *, who: Principal, req: Request, what: str) -> None:
    """Clinical content of a request (an ECG, a slide, an image): the care team only, each read audited;
    staff have no view of it (their masked views show that it exists, not what it shows)."""
    if not may_see(who.institution_code, req):
        raise Forbidden("只有申请方和承担方的医生可以查看此申请的图像和文件", code="not-care-team")
    audit_read(session, who=who, action=f"telemed.{what}.read", target=f"ServiceRequest/{req.id}")


def visible_request(session: Session, *, request_id: int, who: Principal) -> tuple[Request, bool]:
    """The request if the caller may see it and whether in full (care team, audited) or masked (staff)."""
    req = get_request(session, request_id=request_id)
    if who.role in STAFF_ROLES:
        return req, False
    if not may_see(who.institution_code, req):
        raise Forbidden("只有申请方和承担方的医生可以查看此申请", code="not-care-team")
    audit_read(session, who=who, action="telemed.request.read", target=f"ServiceRequest/{req.id}")
    return req, True


def act(
    session: Session,
    *,
    request_id: int,
    to: str,
    who: Principal,
    reason: str | None = None,
    assignee: str | None = None,
) -> Request:
    """A clinician moves a Task: either side may cancel, only the performing hub accepts, starts or rejects."""
    if to == "completed":
        raise Invalid("完成任务请提交报告", code="report-required")
    req = get_request(session, request_id=request_id)
    if to == "cancelled":
        if not may_see(who.institution_code, req):
            raise Forbidden("只有申请方或承担方可以取消申请", code="not-care-team")
    else:
        check_worker(who.institution_code, req)
    return transition(
        session, request_id=request_id, to=to, actor=who.subject, reason=reason, assignee=assignee
    )


def report_by(
    session: Session,
    *,
    request_id: int,
    who: Principal,
    findings: str,
    conclusion: str,
    critical: bool | None = None,
    author: str | None = None,
    amend_reason: str | None = None,
) -> Report:
    """A hub clinician's report, or with `amend_reason` the amendment of the one written."""
    check_worker(who.institution_code, get_request(session, request_id=request_id))
    by = author or who.name or who.subject
    if amend_reason is not None:
        return amend_report(
            session,
            request_id=request_id,
            findings=findings,
            conclusion=conclusion,
            reason=amend_reason,
            critical=critical,
            author=by,
        )
    return report(
        session,
        request_id=request_id,
        findings=findings,
        conclusion=conclusion,
        critical=bool(critical),
        author=by,
    )
