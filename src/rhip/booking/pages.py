"""Booking pages (Chinese) for residents: find a hospital, department and doctor-day, see places per time
slot, book, see and cancel my bookings. Sign-in and real-name registration are `pages_account.py`; the
family doctors', hospital staff's and managers' pages `pages_staff.py`; all render through `render`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rhip.booking import (
    common,
    entry,
    notify,
    referrals as booking_referrals,
    schedules as rota,
    service as svc,
)
from rhip.booking.rules import SESSIONS
from rhip.clock import SHANGHAI, local_now
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.registry import data as reg_data
from rhip.security import pagekit
from rhip.security.deps import SessionDep, public, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
SessionDep = SessionDep
Resident = Annotated[Principal, Depends(require(Role.resident))]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A booking page (the session names in every page's context)."""
    return pagekit.render(
        request, name, {"sessions": {k: v[2] for k, v in SESSIONS.items()}, **context}, status
    )


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a booking page, else my bookings."""
    return pagekit.safe_next(value, default="/booking/me", prefix="/booking")


@router.get("/booking", response_class=HTMLResponse, dependencies=[Depends(public())])
def index(request: Request, session: SessionDep) -> HTMLResponse:
    """Hospitals with schedules in the next two weeks."""
    today = local_now().date()
    with session.begin():
        rows = booking_referrals.hospitals_with_schedules(
            session, date_from=today, date_to=today + timedelta(days=14)
        )
    hospitals = []
    for code, left in rows:
        inst = reg_data.get(code)
        if inst is not None:
            hospitals.append(
                {
                    "code": code,
                    "name": inst.name,
                    "level": inst.level,
                    "district": inst.district,
                    "left": left,
                }
            )
    hospitals.sort(key=lambda h: (h["level"] != "三级", h["code"]))
    return render(request, "booking/index.html", {"hospitals": hospitals})


@router.get("/booking/h/{code}", response_class=HTMLResponse, dependencies=[Depends(public())])
def hospital_page(code: str, request: Request, session: SessionDep) -> HTMLResponse:
    """A hospital's departments with schedules."""
    today = local_now().date()
    inst = common.hospital(code)
    with session.begin():
        depts = booking_referrals.departments_of(
            session, hospital_code=code, date_from=today, date_to=today + timedelta(days=14)
        )
    return render(request, "booking/hospital.html", {"inst": inst, "depts": depts})


@router.get("/booking/h/{code}/d/{dept}", response_class=HTMLResponse, dependencies=[Depends(public())])
def department_page(
    code: str,
    dept: str,
    request: Request,
    session: SessionDep,
    day: Annotated[date | None, Query()] = None,
    msg: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Doctors and days of a department, with the public places left in every time slot."""
    today = local_now().date()
    inst = common.hospital(code)
    with session.begin():
        schedules = rota.get_all_schedules(
            session,
            hospital_code=code,
            department_code=dept,
            date_from=today,
            date_to=today + timedelta(days=14),
        )
        days = sorted({s.service_date for s in schedules})
        chosen = day if day in days else (days[0] if days else None)
        rows = []
        for s in schedules:
            if s.service_date != chosen:
                continue
            slots = [rota.availability(x) for x in rota.get_slots(session, schedule_id=s.id)]
            rows.append({"schedule": s, "slots": slots})
    return render(
        request,
        "booking/department.html",
        {
            "inst": inst,
            "dept": dept,
            "dept_name": common.department_name(dept),
            "days": days,
            "chosen": chosen,
            "rows": rows,
            "msg": msg,
            "tz": SHANGHAI,
        },
    )


@router.post("/booking/book")
async def book(
    request: Request,
    me: Resident,
    slot_id: Annotated[int, Form()],
    back: Annotated[str, Form(max_length=300)] = "/booking",
) -> Response:
    """Book the chosen time slot for the signed-in resident."""
    db: Database = request.app.state.db
    try:  # the same entry as the JSON and FHIR APIs (its own transaction)
        answer, _created = await entry.book(
            db, slot_id=slot_id, person=me.subject, person_name=me.name, actor=me
        )
        appt_id = answer.id
    except RhipError as exc:
        return pagekit.back(
            back if back.startswith("/booking/h/") and "//" not in back else "/booking", exc.detail
        )
    return pagekit.back("/booking/me", f"预约成功：预约号 {appt_id}")


@router.get("/booking/me", response_class=HTMLResponse, dependencies=[Depends(public())])
def my_bookings(
    request: Request, session: SessionDep, msg: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    """The signed-in resident's bookings, newest first, with cancel buttons."""
    me = pagekit.current(request)
    if me is None or me.role is not Role.resident:
        return RedirectResponse("/booking/login?next=/booking/me", status_code=303)
    with session.begin():
        items = svc.get_all_appointments(session, actor=me, limit=100)
        scheds = {s.id: s for s in rota.get_all_schedules_by_ids(session, ids={a.schedule_id for a in items})}
        notes = notify.get_all(session, person=me.subject.strip().upper(), limit=20)
    rows = []
    for a in items:
        s = scheds.get(a.schedule_id)
        inst = reg_data.get(a.hospital_code)
        rows.append(
            {
                "a": a,
                "hospital": inst.name if inst else a.hospital_code,
                "dept": s.department_name if s else a.department_code,
                "doctor": f"{s.doctor_name} {s.doctor_title}" if s else "",
                "status": common.STATUS_LABELS.get(a.status, a.status),
                "cancellable": a.status in ("held", "booked"),
            }
        )
    notices = [
        {
            "n": n,
            "channel": notify.CHANNEL_LABELS.get(n.channel, n.channel),
            "status": notify.STATUS_LABELS.get(n.status, n.status),
        }
        for n in notes
    ]
    return render(request, "booking/me.html", {"rows": rows, "notices": notices, "msg": msg, "tz": SHANGHAI})


@router.post("/booking/cancel/{appointment_id}")
def cancel(appointment_id: int, session: SessionDep, principal: Resident) -> Response:
    """Cancel one of my bookings (until the cut-off)."""
    try:
        with session.begin():
            svc.cancel(session, appointment_id=appointment_id, actor=principal, reason="居民网页取消")
    except RhipError as exc:
        return pagekit.back("/booking/me", exc.detail)
    return pagekit.back("/booking/me", f"已取消预约 {appointment_id}")
