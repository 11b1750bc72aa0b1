"""Booking pages (Chinese) for the professions: the family doctor's desk (priority places, 签约, 上转), the
hospital staff desk (the day's schedules and patient list, ID numbers masked by role) and the managers'
booking statistics with charts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from rhip import charts, months
from rhip.booking import (
    common,
    referrals as booking_referrals,
    schedules as rota,
    service as svc,
    stats as booking_stats,
)
from rhip.booking.pages import render
from rhip.clock import SHANGHAI, local_now
from rhip.errors import RhipError
from rhip.registry import data as reg_data
from rhip.security import masking, pagekit
from rhip.security.deps import SessionDep, audit_read, public, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)

# ------------------------------------------------------------------ family doctors and hospital staff


def _day(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


@router.get("/booking/family", response_class=HTMLResponse, dependencies=[Depends(public())])
def family_page(
    request: Request,
    session: SessionDep,
    day: Annotated[str | None, Query(max_length=10)] = None,
    msg: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """家庭医生工作台: priority-tranche places of a day, sign a resident, refer up with a booked place."""
    me = pagekit.current(request)
    if me is None or me.role is not Role.family_doctor:
        return RedirectResponse("/booking/login?next=/booking/family", status_code=303)
    t = local_now()
    the_day = _day(day, t.date() + timedelta(days=8))
    with session.begin():
        scheds = [
            s
            for s in rota.get_all_schedules(session, date_from=the_day, date_to=the_day)
            if s.status == "open"
        ]
        rows = []
        for s in scheds:
            slots = [
                {"slot": x, "left": x.cap_family - x.booked_family}
                for x in rota.get_slots(session, schedule_id=s.id)
                if x.cap_family > x.booked_family and x.family_release_at <= t and x.starts_at > t
            ]
            if slots:
                inst = reg_data.get(s.hospital_code)
                rows.append({"s": s, "hospital": inst.name if inst else s.hospital_code, "slots": slots})
        referrals = booking_referrals.get_all_referrals(session, actor=me)[:50]
        audit_read(session, request, me, what="page.booking.family", results=len(referrals))
    return render(
        request,
        "booking/family.html",
        {"rows": rows, "day": the_day, "referrals": referrals, "msg": msg, "tz": SHANGHAI},
    )


FamilyDoctor = Annotated[Principal, Depends(require(Role.family_doctor))]


@router.post("/booking/family/sign")
def family_sign(
    session: SessionDep, me: FamilyDoctor, person_id: Annotated[str, Form(max_length=18)]
) -> Response:
    """签约: record that a resident has signed with the family doctor's centre."""
    try:
        with session.begin():
            svc.sign(session, person=person_id, actor=me)
    except RhipError as exc:
        return pagekit.back("/booking/family", exc.detail)
    return pagekit.back("/booking/family", f"已签约：{masking.mask_id(person_id)}")


@router.post("/booking/family/refer")
def family_refer(
    session: SessionDep,
    me: FamilyDoctor,
    slot_id: Annotated[int, Form()],
    person_id: Annotated[str, Form(max_length=18)],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    person_name: Annotated[str | None, Form(max_length=64)] = None,
    day: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """上转: book a priority place for a signed resident and refer them to the specialist."""
    back = f"/booking/family?day={quote(day)}" if day else "/booking/family"
    try:
        with session.begin():
            ref = booking_referrals.refer_up(
                session, person=person_id, slot_id=slot_id, reason=reason, actor=me, person_name=person_name
            )
    except RhipError as exc:
        return pagekit.back(back, exc.detail)
    return pagekit.back(back, f"转诊成功：转诊单 {ref.id}，预约号 {ref.appointment_id}")


@router.get("/booking/staff", response_class=HTMLResponse, dependencies=[Depends(public())])
def staff_page(
    request: Request,
    session: SessionDep,
    day: Annotated[str | None, Query(max_length=10)] = None,
    hospital: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """医院工作台: the hospital's schedules of a day (places booked) and the day's patient list."""
    me = pagekit.current(request)
    if me is None or me.role not in (Role.doctor, Role.manager, Role.admin):
        return RedirectResponse("/booking/login?next=/booking/staff", status_code=303)
    code = me.institution_code if me.role is Role.doctor else hospital
    the_day = _day(day, local_now().date())
    choices = [] if me.role is Role.doctor else _hospital_choices(session, the_day)
    if not code:  # a manager chooses the hospital from a list, not by typing its code
        return render(request, "booking/staff.html", {"choices": choices, "day": the_day, "code": None})
    try:
        rota.check_staff(me, code)
        inst = common.hospital(code)
    except RhipError as exc:
        return render(request, "booking/staff.html", {"error": exc.detail}, status=exc.status)
    with session.begin():
        scheds = rota.get_all_schedules(session, hospital_code=code, date_from=the_day, date_to=the_day)
        rows = []
        for s in scheds:
            slots = rota.get_slots(session, schedule_id=s.id)
            rows.append(
                {
                    "s": s,
                    "booked": sum(x.booked_public + x.booked_family + x.booked_clinic for x in slots),
                    "cap": sum(x.cap_public + x.cap_family + x.cap_clinic for x in slots),
                    "family": sum(x.booked_family for x in slots),
                }
            )
        appts = svc.get_all_appointments(
            session, actor=me, hospital_code=code, service_date=the_day, limit=1000
        )
        by_id = {s.id: s for s in scheds}
        m = masking.Masker(me)
        patients = [
            {
                "a": a,
                "s": by_id.get(a.schedule_id),
                "status": common.STATUS_LABELS.get(a.status, a.status),
                "tranche": common.TRANCHE_LABELS.get(a.tranche, a.tranche),
                "name": m.value(masking.Kind.name, a.person_name, a.person_id),
                "masked": m.id(a.person_id),
            }
            for a in sorted(appts, key=lambda a: (a.starts_at, a.id))
        ]
        if patients:
            audit_read(session, request, me, what="page.booking.staff", target=code, results=len(patients))
    return render(
        request,
        "booking/staff.html",
        {
            "hospital": inst.name,
            "code": code,
            "day": the_day,
            "rows": rows,
            "patients": patients,
            "choices": choices,
            "tz": SHANGHAI,
        },
    )


def _hospital_choices(session: Session, day: date) -> list[tuple[str, str]]:
    """Hospitals for the staff desk's picker: those with schedules within two weeks of the day, else all."""
    with session.begin():
        rows = booking_referrals.hospitals_with_schedules(
            session, date_from=day - timedelta(days=14), date_to=day + timedelta(days=14)
        )
    codes = [code for code, _left in rows] or [
        i.code for i in reg_data.institutions() if i.kind in ("hospital", "mch")
    ]
    out = [(c, inst.name) for c in codes if (inst := reg_data.get(c)) is not None]
    return sorted(out, key=lambda x: x[0])


# ------------------------------------------------------------------ statistics (managers)

TOP_HOSPITALS = 15


@router.get("/booking/stats", response_class=HTMLResponse)
def stats_page(
    request: Request,
    session: SessionDep,
    _p: Annotated[Principal, Depends(require(Role.manager, Role.admin))],
    month: Annotated[str | None, Query(pattern=months.PATTERN)] = None,
) -> HTMLResponse:
    """预约统计：某月按渠道、按医院、按日的预约量（图与表），默认最近有预约的月份。"""
    with session.begin():
        available = booking_stats.months_with_data(session)
        m = months.check(month) if month else months.latest(available, months.of(local_now().date()))
        by_hospital = booking_stats.hospital_table(session, month=m)
        by_platform = booking_stats.platform_table(session, month=m)
        by_channel = booking_stats.channel_counts(session, month=m)
        by_day = booking_stats.daily_counts(session, month=m)
    hospitals = [(str(r[1]), int(r[-1])) for r in by_hospital.rows[:-1]][:TOP_HOSPITALS]
    label = months.label(m)
    names = [h for h, _ in hospitals]
    panels = [
        charts.panel(
            charts.bar_chart(f"{label}各渠道预约量", list(by_channel), list(by_channel.values()), unit="次"),
            ("渠道", "预约量（次）"),
            list(by_channel.items()),
        ),
        charts.panel(
            charts.hbar_chart(f"预约量前 {len(names)} 位的医院", names, [n for _, n in hospitals], unit="次"),
            ("医院", "预约量（次）"),
            hospitals,
        ),
        charts.panel(
            charts.line_chart(f"{label}每日预约量", list(by_day), list(by_day.values()), unit="次"),
            ("日期", "预约量（次）"),
            list(by_day.items()),
        ),
    ]
    return render(
        request,
        "booking/stats.html",
        {
            "month": m,
            "label": label,
            "available": sorted({*available, m}, reverse=True),
            "panels": panels if any(by_day.values()) else [],
            "tables": [by_hospital, by_platform],
        },
    )
