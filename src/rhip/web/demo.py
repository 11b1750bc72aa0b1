"""The demo's accounts: one per role, with generated passwords, so `rhip serve` right after `rhip demo` can
be tried as each kind of user. The resident has a booked appointment on one of the coming days.

Every account is marked `users.demo` and listed with its password in `data_dir/demo/accounts.txt` (mode
0600), which `rhip demo` prints at the end. Running the demo again gives the same accounts new passwords.
`run(settings=, synth_dir=, console=)` is the `rhip demo` step (cli.DEMO_STEPS).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.booking import accounts as booking_accounts, demo_plan as booking_plan, service as booking
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.registry import data as registry_data, idnumber
from rhip.security import service as security
from rhip.security.models import User
from rhip.security.roles import Role
from rhip.security.service import Principal

RESIDENT_ID = idnumber.make_id("320102", date(1986, 5, 17), 123)
RESIDENT_PHONE = "13951000017"


@dataclass(frozen=True)
class Account:
    """One demo account: who it is, where it signs in."""

    role: Role
    username: str
    name: str
    institution: str | None
    login: str  # the sign-in page
    password: str = ""


def accounts_file(settings: Settings) -> Path:
    """Where the demo's accounts and passwords are written."""
    return settings.data_dir / "demo" / "accounts.txt"


def planned() -> list[Account]:
    """The accounts to create: a resident, a doctor and the data clerk of the busiest hospital, a community
    centre's family doctor, a hotline agent, a manager, an auditor and an administrator."""
    busiest = max(booking_plan.calibration(), key=lambda r: sum(r[c] for c in booking_plan.COLUMNS))
    hospital = busiest["code"]
    centre = next(i.code for i in registry_data.institutions() if i.kind == "community_health_centre")
    return [
        Account(Role.resident, booking.person_id(RESIDENT_ID), "王演示", None, "/booking/login"),
        Account(Role.doctor, "demo-doctor", "李医生（演示）", hospital, "/login"),
        Account(Role.family_doctor, "demo-family", "张家庭医生（演示）", centre, "/login"),
        Account(Role.uploader, "demo-uploader", "赵数据员（演示）", hospital, "/login"),
        Account(Role.agent, "demo-agent", "陈坐席（演示）", None, "/login"),
        Account(Role.manager, "demo-manager", "刘管理员（演示）", None, "/login"),
        Account(Role.auditor, "demo-auditor", "周审计员（演示）", None, "/login"),
        Account(Role.admin, "demo-admin", "吴系统管理员（演示）", None, "/login"),
    ]


def _ensure(session: Session, account: Account) -> Account:
    """Create the account, or give an existing one a new password; either way marked as a demo account."""
    password = secrets.token_urlsafe(12)
    user = session.scalar(select(User).where(User.username == account.username))
    if user is None and account.role is Role.resident:
        # a demo resident is registered as at a hospital counter: real-name checked in person
        user = booking_accounts.register_in_person(
            session,
            id_number=RESIDENT_ID,
            name=account.name,
            phone=RESIDENT_PHONE,
            password=password,
            actor="demo",
        )
    elif user is None:
        user = security.create_user(
            session,
            username=account.username,
            password=password,
            role=account.role.value,
            display_name=account.name,
            institution_code=account.institution,
        )
    user.password_hash = security.hash_password(password)
    user.active = True
    user.demo = True
    return Account(account.role, account.username, account.name, account.institution, account.login, password)


def _book_resident(db: Database, resident: Account) -> str:
    """A booking for the resident on one of the coming days (kept if it already has one)."""
    me = Principal(subject=resident.username, role=Role.resident, name=resident.name)
    today = clock.local_now().date()
    with db.session() as s, s.begin():
        mine = [
            a for a in booking.get_all_appointments(s, actor=me, limit=20) if a.status in ("held", "booked")
        ]
        if mine:
            return f"已有预约 {mine[0].id}"
        for sched in booking.get_all_schedules(s, date_from=today, date_to=today + timedelta(days=7)):
            for slot in booking.get_slots(s, schedule_id=sched.id):
                left = booking.availability(slot)
                if left.public_open and left.public_left > 1:
                    done = booking.book(
                        s,
                        slot_id=slot.id,
                        person=resident.username,
                        person_name=resident.name,
                        actor=me,
                        channel="web_12320",
                    )
                    when = done.appointment.starts_at.astimezone(clock.SHANGHAI)
                    return f"预约 {done.appointment.id}（{when:%Y-%m-%d %H:%M}）"
    return "未来几天没有可预约的号源"


def write_file(path: Path, made: list[Account]) -> None:
    """The accounts and passwords, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# rhip 演示账号（users.demo = true）：密码为随机生成，仅供演示，正式使用前请删除或停用",
        "# 居民在 /booking/login 用身份证号码登录；其他角色在 /login 用用户名登录",
        "# 角色\t用户名\t密码\t姓名\t机构\t登录页",
    ]
    lines += [
        f"{a.role.value}\t{a.username}\t{a.password}\t{a.name}\t{a.institution or ''}\t{a.login}"
        for a in made
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    path.chmod(0o600)  # an older file keeps its mode through O_CREAT


def read_file(path: Path) -> list[Account]:
    """The accounts of an accounts file (for the summary and the tests)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            role, username, password, name, inst, login = line.split("\t")
            out.append(Account(Role(role), username, name, inst or None, login, password))
    return out


def print_accounts(settings: Settings, console: Console) -> None:
    """The demo accounts as a table (the end of `rhip demo`)."""
    path = accounts_file(settings)
    if not path.exists():
        return
    table = Table(title=f"演示账号（{path}，仅本人可读）")
    for col in ("角色", "用户名", "密码", "登录页"):
        table.add_column(col, overflow="fold")  # never cut a password short
    for a in read_file(path):
        table.add_row(a.role.label, a.username, a.password, a.login)
    console.print(table)


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """The demo step: the accounts, the resident's booking, the accounts file."""
    db = Database.from_settings(settings)
    try:
        with db.session() as s, s.begin():
            made = [_ensure(s, a) for a in planned()]
        try:
            booked = _book_resident(db, made[0])
        except RhipError as exc:
            booked = f"预约未成功：{exc.detail}"
    finally:
        db.dispose()
    path = accounts_file(settings)
    write_file(path, made)
    return [("演示账号", f"{len(made)} 个（每个角色一个，{path}）；居民{booked}")]
