"""Booking pages (Chinese): find a hospital, department and doctor-day, see places per time slot,
book, see and cancel my bookings; real-name registration and sign-in that set the rhip_token cookie."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from rhip.booking import accounts, notify, pgbatch, referrals as booking_referrals, service as svc
from rhip.booking.rules import SESSIONS
from rhip.clock import SHANGHAI, local_now
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.registry import data as reg_data
from rhip.security import pagekit, realname, service as security, throttle
from rhip.security.deps import SessionDep, client_context, public, require
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
    return _render(request, "booking_index.html", {"hospitals": hospitals})


@router.get("/booking/h/{code}", response_class=HTMLResponse, dependencies=[Depends(public())])
def hospital_page(code: str, request: Request, session: SessionDep) -> HTMLResponse:
    """A hospital's departments with schedules."""
    today = local_now().date()
    inst = svc.hospital(code)
    with session.begin():
        depts = booking_referrals.departments_of(
            session, hospital_code=code, date_from=today, date_to=today + timedelta(days=14)
        )
    return _render(request, "booking_hospital.html", {"inst": inst, "depts": depts})


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
    inst = svc.hospital(code)
    with session.begin():
        schedules = svc.get_all_schedules(
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
            slots = [svc.availability(x) for x in svc.get_slots(session, schedule_id=s.id)]
            rows.append({"schedule": s, "slots": slots})
    return _render(
        request,
        "booking_department.html",
        {
            "inst": inst,
            "dept": dept,
            "dept_name": svc.department_name(dept),
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
    try:
        if pgbatch.batched(db):
            # PostgreSQL: the same batched call as the JSON and FHIR APIs (its own transaction)
            answer, _created = await pgbatch.book_for(
                db, slot_id=slot_id, person=me.subject, person_name=me.name, actor=me
            )
            appt_id = answer.id
        else:
            appt_id = await run_in_threadpool(_book_one, db, me, slot_id)
    except RhipError as exc:
        return _back(back if back.startswith("/booking/h/") and "//" not in back else "/booking", exc.detail)
    return _back("/booking/me", f"预约成功：预约号 {appt_id}")


def _book_one(db: Database, me: Principal, slot_id: int) -> int:
    with db.session() as session, session.begin():
        done = svc.book(
            session, slot_id=slot_id, person=me.subject, person_name=me.name, actor=me, alone=True
        )
        return done.appointment.id


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
        scheds = {s.id: s for s in svc.get_all_schedules_by_ids(session, ids={a.schedule_id for a in items})}
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
                "status": svc.STATUS_LABELS.get(a.status, a.status),
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
    return _render(request, "booking_me.html", {"rows": rows, "notices": notices, "msg": msg, "tz": SHANGHAI})


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
    return _render(request, "booking_login.html", {"next": _safe_next(next), "msg": msg})


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
        request, "booking_verify.html", {"signup_id": signup_id, "next": target, "msg": msg}, status
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
            for s in svc.get_all_schedules(session, date_from=the_day, date_to=the_day)
            if s.status == "open"
        ]
        rows = []
        for s in scheds:
            slots = [
                {"slot": x, "left": x.cap_family - x.booked_family}
                for x in svc.get_slots(session, schedule_id=s.id)
                if x.cap_family > x.booked_family and x.family_release_at <= t and x.starts_at > t
            ]
            if slots:
                inst = reg_data.get(s.hospital_code)
                rows.append({"s": s, "hospital": inst.name if inst else s.hospital_code, "slots": slots})
        referrals = booking_referrals.get_all_referrals(session, actor=me)[:50]
    return _render(
        request,
        "booking_family.html",
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
    if not code:
        return _render(
            request, "booking_staff.html", {"error": "请指定医院（?hospital=机构代码）"}, status=422
        )
    the_day = _day(day, local_now().date())
    try:
        svc.check_staff(me, code)
        inst = svc.hospital(code)
    except RhipError as exc:
        return _render(request, "booking_staff.html", {"error": exc.detail}, status=exc.status)
    with session.begin():
        scheds = svc.get_all_schedules(session, hospital_code=code, date_from=the_day, date_to=the_day)
        rows = []
        for s in scheds:
            slots = svc.get_slots(session, schedule_id=s.id)
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
        patients = [
            {
                "a": a,
                "s": by_id.get(a.schedule_id),
                "status": svc.STATUS_LABELS.get(a.status, a.status),
                "tranche": svc.TRANCHE_LABELS.get(a.tranche, a.tranche),
                "masked": f"{a.person_id[:6]}********{a.person_id[-4:]}",
            }
            for a in sorted(appts, key=lambda a: (a.starts_at, a.id))
        ]
    return _render(
        request,
        "booking_staff.html",
        {
            "hospital": inst.name,
            "code": code,
            "day": the_day,
            "rows": rows,
            "patients": patients,
            "tz": SHANGHAI,
        },
    )
