"""Booking pages (Chinese): find a hospital, department and doctor-day, see places per time slot,
book, see and cancel my bookings; real-name registration and sign-in that set the rhip_token cookie."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from rhip import charts, months
from rhip.booking import (
    accounts,
    common,
    entry,
    notify,
    referrals as booking_referrals,
    schedules as rota,
    service as svc,
    stats as booking_stats,
)
from rhip.booking.rules import SESSIONS
from rhip.clock import SHANGHAI, local_now
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.registry import data as reg_data
from rhip.security import masking, pagekit, realname, service as security, throttle
from rhip.security.deps import SessionDep, audit_read, client_context, public, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
SessionDep = SessionDep
Resident = Annotated[Principal, Depends(require(Role.resident))]
COOKIE = "rhip_token"


_me = pagekit.current
_back = pagekit.back


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return pagekit.render(
        request, name, {"sessions": {k: v[2] for k, v in SESSIONS.items()}, **context}, status
    )


def _safe_next(value: str | None) -> str:
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
    return _render(request, "booking/index.html", {"hospitals": hospitals})


@router.get("/booking/h/{code}", response_class=HTMLResponse, dependencies=[Depends(public())])
def hospital_page(code: str, request: Request, session: SessionDep) -> HTMLResponse:
    """A hospital's departments with schedules."""
    today = local_now().date()
    inst = common.hospital(code)
    with session.begin():
        depts = booking_referrals.departments_of(
            session, hospital_code=code, date_from=today, date_to=today + timedelta(days=14)
        )
    return _render(request, "booking/hospital.html", {"inst": inst, "depts": depts})


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
    return _render(
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
        return _back(back if back.startswith("/booking/h/") and "//" not in back else "/booking", exc.detail)
    return _back("/booking/me", f"预约成功：预约号 {appt_id}")


@router.get("/booking/me", response_class=HTMLResponse, dependencies=[Depends(public())])
def my_bookings(
    request: Request, session: SessionDep, msg: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    """The signed-in resident's bookings, newest first, with cancel buttons."""
    me = _me(request)
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
    return _render(request, "booking/me.html", {"rows": rows, "notices": notices, "msg": msg, "tz": SHANGHAI})


@router.post("/booking/cancel/{appointment_id}")
def cancel(appointment_id: int, session: SessionDep, principal: Resident) -> Response:
    """Cancel one of my bookings (until the cut-off)."""
    try:
        with session.begin():
            svc.cancel(session, appointment_id=appointment_id, actor=principal, reason="居民网页取消")
    except RhipError as exc:
        return _back("/booking/me", exc.detail)
    return _back("/booking/me", f"已取消预约 {appointment_id}")


@router.get("/booking/login", response_class=HTMLResponse, dependencies=[Depends(public())])
def login_page(
    request: Request,
    next: Annotated[str | None, Query(max_length=200)] = None,
    msg: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Sign in, or register with a real name (身份证号码 + 姓名 + 密码)."""
    return _render(request, "booking/login.html", {"next": _safe_next(next), "msg": msg})


@router.post("/booking/login", dependencies=[Depends(public())])
def login(
    request: Request,
    session: SessionDep,
    id_number: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=200)] = "/booking/me",
) -> Response:
    """Check the password (the portal's one throttled sign-in) and set the token cookie."""
    target = _safe_next(next)
    try:
        username = svc.person_id(id_number)
    except RhipError:
        username = id_number  # refused like any wrong password: the answer does not say why
    try:
        token, ttl, _user = pagekit.sign_in(request, session, username=username, password=password)
    except RhipError as exc:
        return _back(f"/booking/login?next={quote(target)}", exc.detail)
    response = RedirectResponse(target, status_code=303)
    pagekit.set_session(request, response, token, ttl)
    return response


@router.post("/booking/register", response_class=HTMLResponse, dependencies=[Depends(public())])
def register(
    request: Request,
    session: SessionDep,
    id_number: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(min_length=2, max_length=32)],
    phone: Annotated[str, Form(max_length=20)],
    password: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=200)] = "/booking/me",
) -> Response:
    """Real-name sign-up, step 1: a code goes to the phone the platform holds for that person."""
    secret = request.app.state.settings.resolved_secret_key
    addr = client_context(request)["client_addr"] or "-"
    try:
        with session.begin():
            throttle.check(session, throttle.SIGNUP_ADDRESS, addr)
        with session.begin():
            throttle.fail(session, throttle.SIGNUP_ADDRESS, addr)
            signup = accounts.register_resident(
                session, id_number=id_number, name=name, phone=phone, password=password, secret=secret
            )
    except RhipError as exc:
        return _back(f"/booking/login?next={quote(_safe_next(next))}", exc.detail)
    return _verify_page(request, signup.id, _safe_next(next), realname.ACCEPTED)


def _verify_page(request: Request, signup_id: str, target: str, msg: str, status: int = 200) -> HTMLResponse:
    return _render(
        request, "booking/verify.html", {"signup_id": signup_id, "next": target, "msg": msg}, status
    )


@router.post("/booking/register/verify", response_class=HTMLResponse, dependencies=[Depends(public())])
def register_verify(
    request: Request,
    session: SessionDep,
    signup_id: Annotated[str, Form(max_length=64)],
    code: Annotated[str, Form(max_length=8)],
    next: Annotated[str, Form(max_length=200)] = "/booking/me",
) -> Response:
    """Step 2: the code from the text message; right, the account exists and the resident is signed in."""
    settings = request.app.state.settings
    try:
        with session.begin():
            user = accounts.confirm_resident(
                session, signup_id=signup_id, code=code, secret=settings.resolved_secret_key
            )
    except RhipError as exc:  # the phone's cap of people
        return _verify_page(request, signup_id, _safe_next(next), exc.detail, status=exc.status)
    if user is None:
        return _verify_page(request, signup_id, _safe_next(next), realname.REFUSED, status=422)
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    token = security.issue_token(
        settings.resolved_secret_key, subject=user.username, role="resident", ttl=ttl, name=user.display_name
    )
    response = RedirectResponse(_safe_next(next), status_code=303)
    pagekit.set_session(request, response, token, ttl)
    return response


@router.post("/booking/register/resend", response_class=HTMLResponse, dependencies=[Depends(public())])
def register_resend(
    request: Request,
    session: SessionDep,
    signup_id: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form(max_length=200)] = "/booking/me",
) -> Response:
    """Text a new code (once a minute)."""
    with session.begin():
        realname.resend_code(
            session, signup_id=signup_id, secret=request.app.state.settings.resolved_secret_key
        )
    return _verify_page(request, signup_id, _safe_next(next), realname.ACCEPTED)


@router.post("/booking/logout", dependencies=[Depends(public())])
def logout(request: Request, session: SessionDep) -> Response:
    """Sign out: the token is revoked and the cookie dropped."""
    response = RedirectResponse("/booking", status_code=303)
    pagekit.end_session(request, session, response)
    return response


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
    me = _me(request)
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
    return _render(
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
        return _back("/booking/family", exc.detail)
    return _back("/booking/family", f"已签约：{person_id[:6]}********{person_id[-4:]}")


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
        return _back(back, exc.detail)
    return _back(back, f"转诊成功：转诊单 {ref.id}，预约号 {ref.appointment_id}")


@router.get("/booking/staff", response_class=HTMLResponse, dependencies=[Depends(public())])
def staff_page(
    request: Request,
    session: SessionDep,
    day: Annotated[str | None, Query(max_length=10)] = None,
    hospital: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """医院工作台: the hospital's schedules of a day (places booked) and the day's patient list."""
    me = _me(request)
    if me is None or me.role not in (Role.doctor, Role.manager, Role.admin):
        return RedirectResponse("/booking/login?next=/booking/staff", status_code=303)
    code = me.institution_code if me.role is Role.doctor else hospital
    the_day = _day(day, local_now().date())
    choices = [] if me.role is Role.doctor else _hospital_choices(session, the_day)
    if not code:  # a manager chooses the hospital from a list, not by typing its code
        return _render(request, "booking/staff.html", {"choices": choices, "day": the_day, "code": None})
    try:
        rota.check_staff(me, code)
        inst = common.hospital(code)
    except RhipError as exc:
        return _render(request, "booking/staff.html", {"error": exc.detail}, status=exc.status)
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
    return _render(
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
    return _render(
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
