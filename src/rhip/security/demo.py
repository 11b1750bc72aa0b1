"""The demo step of security: institutions' phones of the synthetic residents on record, then one
real-name sign-up end to end (code to the phone on record, read back from the SMS outbox), and one
impostor who gets no code."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console
from sqlalchemy import func, select

from rhip.config import Settings
from rhip.db.engine import Database, dialect_insert
from rhip.security import masking, realname, sms
from rhip.security.models import AuditEvent, PersonPhone, User
from rhip.security.roles import Role
from rhip.security.service import Principal

PEOPLE = 5_000  # residents whose phones hospitals hold (enough to show; seconds at any scale)


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Put residents' phones on record and run one sign-up through the code and the outbox."""
    path = synth_dir / "residents.parquet"
    if not path.exists():
        return [("实名注册", "跳过：没有合成居民")]
    people = pq.read_table(path, columns=["id_number", "phone"]).slice(0, PEOPLE).to_pylist()
    people = [p for p in people if p["id_number"] and p["phone"] and len(p["phone"]) == 11]
    db = Database.from_settings(settings)
    secret = settings.resolved_secret_key
    try:
        with db.session() as s, s.begin():
            s.execute(
                dialect_insert(s, PersonPhone).on_conflict_do_nothing(index_elements=["id_number", "phone"]),
                [
                    {
                        "id_number": p["id_number"],
                        "phone": p["phone"],
                        "source": "synth",
                        "institution_code": None,
                    }
                    for p in people
                ],
            )
            on_record = s.scalar(select(func.count()).select_from(PersonPhone)) or 0
        owner = next(
            (p for p in people if not _has_account(db, p["id_number"])),
            None,
        )
        if owner is None:
            return [("实名注册", f"机构登记手机号 {on_record:,} 条；演示居民均已注册")]
        with db.session() as s, s.begin():
            signup = realname.start_signup(
                s,
                id_number=owner["id_number"],
                name="演示居民",
                phone=owner["phone"],
                password="演示-钟山风雨-2025",
                secret=secret,
            )
            impostor = realname.start_signup(
                s,
                id_number=owner["id_number"],
                name="冒名者",
                phone="13800000000" if owner["phone"] != "13800000000" else "13900000000",
                password="演示-冒名顶替-2025",
                secret=secret,
            )
        with db.session() as s, s.begin():
            text = sms.outbox(s, phone=owner["phone"], limit=1)[0].message
            code = re.search(r"\d{6}", text)
            impostor_texts = len(sms.outbox(s, phone=impostor.phone, limit=5))
        assert code is not None
        with db.session() as s, s.begin():
            done = realname.confirm_signup(s, signup_id=signup.id, code=code[0], secret=secret)
        who = masking.mask_id(owner["id_number"])
        phone = masking.mask_phone(owner["phone"])
        console.print(
            f"实名注册：验证码已发至机构登记的手机 {phone}，{who} 核验{'通过' if done else '未通过'}；"
            f"冒名者手机收到短信 {impostor_texts} 条"
        )
        with db.session() as s, s.begin():
            reads = s.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("read.%"))
            )
        seen = {
            role.label: masking.Masker(Principal(subject="demo", role=role)).value(
                masking.Kind.name, "演示居民", owner["id_number"]
            )
            for role in (Role.doctor, Role.manager)
        }
        console.print(f"按角色脱敏：{seen}；个人信息调阅留痕 {reads or 0:,} 条（read.*）")
        return [
            (
                "实名注册",
                f"机构登记手机号 {on_record:,} 条；短信验证码核验{'通过' if done else '未通过'}（{who}）",
            ),
            (
                "按角色脱敏与调阅留痕",
                "；".join(f"{k}看到“{v}”" for k, v in seen.items()) + f"；调阅留痕 {reads or 0:,} 条",
            ),
        ]
    finally:
        db.dispose()


def _has_account(db: Database, id_number: str) -> bool:
    with db.session() as s, s.begin():
        return s.scalar(select(User.id).where(User.username == id_number)) is not None
