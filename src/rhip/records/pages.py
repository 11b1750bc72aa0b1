"""Records pages (Chinese): the doctor's record browser (reminders first, the consent state, a one-time
code or emergency access with a reason when refused) and the resident's 我的健康档案 (timeline, reports,
consents, who viewed me, measurements with a chart). Same services as the JSON API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from rhip.charts import Series, line_chart
from rhip.clock import SHANGHAI
from rhip.errors import Forbidden, RhipError
from rhip.identity import service as identity
from rhip.identity.schemas import PersonRead
from rhip.records import audit, consent, reminders, service, store
from rhip.records.api import day_range
from rhip.records.consent import Access
from rhip.records.models import AccessLog, Consent, RecordEntry
from rhip.records.viewing import report_view, view
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
Resident = Annotated[Principal, Depends(require(Role.resident))]
Clinician = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor))]
LIMIT = 500  # timeline entries on the page (newest first)
BASIS = {"self": "本人", "own-institution": "本机构记录（未获授权，仅显示本机构）", "none": "未授权"}


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    base = {"tz": SHANGHAI, "kinds": store.kind_labels(), "msg": request.query_params.get("msg", "")[:200]}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, {**base, **ctx}, status_code=status
    )
    return response


def _back(url: str, msg: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?msg={quote(msg)}", status_code=303)


def basis_label(basis: str) -> str:
    """The consent state in words."""
    kind, _, n = basis.partition(":")
    return {"consent": f"患者授权（第 {n} 号）", "emergency": f"紧急调阅（第 {n} 号，待审计复核）"}.get(
        kind, BASIS.get(basis, basis)
    )


def _mask(id_number: str | None) -> str:
    return f"{id_number[:4]}{'*' * 10}{id_number[-4:]}" if id_number and len(id_number) == 18 else "—"


# ------------------------------------------------------------------------------- clinicians


@router.get("/records", response_class=HTMLResponse)
def search(
    request: Request,
    session: SessionDep,
    principal: Clinician,
    q: Annotated[str | None, Query(max_length=40)] = None,
) -> Any:
    """Find a patient by ID number or EMPI number, then open the record."""
    found: list[str] = []
    if q:
        q = q.strip().upper()
        with session.begin():
            found = identity.find_persons(session, id_number=q) if len(q) in (15, 18) else []
            found = found[:20]
            for pid in found:  # the search tells who holds this ID number: each person found is logged
                audit.write(
                    session,
                    principal=principal,
                    person_id=pid,
                    action="search",
                    basis="search",
                    outcome="allowed",
                    detail="按身份证号查找",
                )
        if not found and q.isalnum():
            found = [q]
        if len(found) == 1:
            return RedirectResponse(f"/records/person/{found[0]}", status_code=303)
    return _render(request, "records/search.html", {"q": q or "", "found": found})


@router.get("/records/person/{person_id}", response_class=HTMLResponse)
def person_page(
    request: Request,
    person_id: str,
    session: SessionDep,
    principal: Clinician,
    kind: Annotated[str | None, Query(max_length=24)] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    institution: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """A patient's record as consent allows; refused: ask for a code or state an emergency reason."""
    person_id = person_id[:40]
    kinds = [kind] if kind else None
    try:
        s, e = day_range(start, end)
        service.check_kinds(kinds)

        def read(access: Access) -> tuple[list[RecordEntry], list[reminders.Reminder], PersonRead]:
            entries = service.timeline(
                session,
                access=access,
                kinds=kinds,
                start=s,
                end=e,
                institution=institution or None,
                limit=LIMIT,
            )
            whole = not (kinds or s or e or institution) and len(entries) < LIMIT
            tips = reminders.for_view(session, access=access, entries=entries, whole=whole)
            return entries, tips, identity.get_person(session, person_id=access.person_id)

        access, (entries, tips, person) = view(
            session, principal=principal, person_id=person_id, action="view-reminders", read=read
        )
    except Forbidden as exc:
        if exc.code != consent.REFUSED:
            raise
        return _render(request, "records/refused.html", {"person_id": person_id}, status=403)
    except RhipError as exc:
        return _render(request, "records/refused.html", {"person_id": person_id, "error": exc.detail}, 422)
    return _render(
        request,
        "records/person.html",
        {
            "access": access,
            "basis": basis_label(access.basis),
            "entries": entries,
            "reminders": tips,
            "person": person,
            "masked_id": _mask(person.id_number),
            "filters": {
                "kind": kind or "",
                "from": start or "",
                "to": end or "",
                "institution": institution or "",
            },
        },
    )


@router.post("/records/person/{person_id}/redeem")
def redeem(
    request: Request,
    person_id: str,
    session: SessionDep,
    principal: Clinician,
    code: Annotated[str, Form(max_length=6)],
) -> RedirectResponse:
    """Redeem the code the resident read out."""
    try:
        with session.begin():
            c = consent.redeem(
                session,
                principal=principal,
                person_id=person_id[:40],
                code=code,
                secret=str(request.app.state.settings.secret_key),
            )
    except RhipError as exc:
        return _back(f"/records/person/{person_id[:40]}", exc.detail)
    return _back(
        f"/records/person/{person_id[:40]}",
        "授权码有效，已获本次就诊授权" if c else "授权码错误、已使用或已过期",
    )


@router.post("/records/person/{person_id}/emergency")
def emergency(
    person_id: str,
    session: SessionDep,
    principal: Clinician,
    reason: Annotated[str, Form(max_length=500)],
) -> RedirectResponse:
    """Break the glass with a stated reason."""
    try:
        with session.begin():
            consent.emergency(session, principal=principal, person_id=person_id[:40], reason=reason)
    except RhipError as exc:
        return _back(f"/records/person/{person_id[:40]}", exc.detail)
    return _back(f"/records/person/{person_id[:40]}", "已登记紧急调阅，4 小时内有效，将由审计员复核")


# -------------------------------------------------------------------------------- residents


@router.get("/records/me", response_class=HTMLResponse)
def my_record(request: Request, session: SessionDep, principal: Resident) -> HTMLResponse:
    """我的健康档案: timeline, reports, consents, who viewed me, measurements."""

    def read(access: Access) -> tuple[list[RecordEntry], list[Consent], list[AccessLog], list[RecordEntry]]:
        pid = access.person_id
        log = session.scalars(
            select(AccessLog).where(AccessLog.person_id == pid).order_by(AccessLog.id.desc()).limit(50)
        ).all()
        return (
            service.timeline(session, access=access, limit=300),
            consent.consents_of(session, person_id=pid),
            list(log),
            service.measurements(session, person_id=pid),
        )

    try:
        _a, (entries, consents, log, measures) = view(
            session, principal=principal, person_id=None, action="view", read=read
        )
    except RhipError as exc:
        return _render(request, "records/me.html", {"error": exc.detail, "entries": []}, exc.status)
    charts = []
    for name, m in service.MEASURES.items():
        pts = [x for x in measures if x.detail.get("measure") == name]
        if pts:
            labels = [x.occurred_at.astimezone(SHANGHAI).strftime("%m-%d") for x in pts]
            charts.append(
                {
                    "svg": line_chart(
                        f"{m.label}（{m.unit}）", labels, [Series(m.label, [x.detail["value"] for x in pts])]
                    ),
                    "rows": list(zip(labels, [x.detail["value"] for x in pts], strict=True)),
                    "label": m.label,
                }
            )
    return _render(
        request,
        "records/me.html",
        {
            "entries": entries,
            "reports": [x for x in entries if x.kind in ("lab", "exam")],
            "consents": consents,
            "log": log,
            "charts": charts,
            "measures": service.MEASURES,
            "basis_label": basis_label,
        },
    )


@router.get("/records/me/reports/{entry_id}", response_class=HTMLResponse)
def my_report(request: Request, entry_id: int, session: SessionDep, principal: Resident) -> HTMLResponse:
    """One of my reports with results and reference ranges."""
    try:
        entry = report_view(session, principal=principal, person_id=None, entry_id=entry_id)
    except RhipError as exc:
        return _render(request, "records/report.html", {"error": exc.detail, "entry": None}, exc.status)
    return _render(request, "records/report.html", {"entry": entry})


@router.post("/records/me/consents")
def grant(
    session: SessionDep,
    principal: Resident,
    institution_code: Annotated[str, Form(max_length=32)],
    days: Annotated[int, Form(ge=1, le=366)] = 30,
    doctor: Annotated[str, Form(max_length=128)] = "",
) -> RedirectResponse:
    """Authorise an institution."""
    try:
        with session.begin():
            consent.grant(
                session,
                principal=principal,
                institution_code=institution_code.strip(),
                doctor=doctor or None,
                days=days,
            )
    except RhipError as exc:
        return _back("/records/me", exc.detail)
    return _back("/records/me", f"已授权 {institution_code} 调阅您的健康档案 {days} 天")


@router.post("/records/me/consents/{consent_id}/revoke")
def revoke(consent_id: int, session: SessionDep, principal: Resident) -> RedirectResponse:
    """Withdraw a grant."""
    try:
        with session.begin():
            consent.revoke(session, principal=principal, consent_id=consent_id)
    except RhipError as exc:
        return _back("/records/me", exc.detail)
    return _back("/records/me", "授权已撤销")


@router.post("/records/me/code")
def code(request: Request, session: SessionDep, principal: Resident) -> RedirectResponse:
    """A one-time code to read to the doctor."""
    with session.begin():
        value, _row = consent.new_code(
            session, principal=principal, secret=str(request.app.state.settings.secret_key)
        )
    return _back("/records/me", f"一次性授权码：{value}（10 分钟内有效，仅可使用一次）")


@router.post("/records/me/measurements")
def measure(
    session: SessionDep,
    principal: Resident,
    kind: Annotated[str, Form(max_length=20)],
    value: Annotated[float, Form(ge=-1e9, le=1e9)],
) -> RedirectResponse:
    """Record a self-measured value."""
    try:
        with session.begin():
            pid = consent.resident_person(session, principal)
            service.add_measurement(session, person_id=pid, kind=kind, value=value)
    except RhipError as exc:
        return _back("/records/me", exc.detail)
    return _back("/records/me", "已记录")
