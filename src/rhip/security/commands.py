"""`rhip security ...`: the SMS outbox, its delivery through the gateway, phones on record."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rhip.clock import SHANGHAI
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import Invalid
from rhip.security import masking, realname, sms, throttle

app = typer.Typer(
    help="Security: SMS outbox, real-name phones on record, throttle upkeep", no_args_is_help=True
)
console = Console()


@app.command("outbox")
def outbox(
    phone: Annotated[str | None, typer.Option(help="Only texts to this phone")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    show: Annotated[bool, typer.Option(help="Show whole phone numbers and texts (codes)")] = False,
) -> None:
    """The newest texts in the SMS outbox (phones and codes masked unless --show)."""
    db = Database.from_settings(Settings())
    with db.session() as s, s.begin():
        rows = sms.outbox(s, phone=phone, limit=limit)
    table = Table(title="短信发件箱")
    for col in ("编号", "时间", "手机", "用途", "状态", "内容"):
        table.add_column(col)
    for m in rows:
        text = m.message if show else masking.mask_text(re.sub(r"\d{6}", "******", m.message))
        table.add_row(
            str(m.id),
            m.created_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M:%S"),
            m.phone if show else (masking.mask_phone(m.phone) or ""),
            m.purpose,
            m.status,
            text,
        )
    console.print(table)


@app.command("deliver")
def deliver() -> None:
    """Send pending texts through the gateway (RHIP_SMS_URL); run it from cron or a timer."""
    settings = Settings()
    if not settings.sms_url:
        raise Invalid("未配置短信网关 RHIP_SMS_URL：短信留在发件箱中", code="no-sms-gateway")
    db = Database.from_settings(settings)
    adapter = sms.HttpSmsAdapter(url=settings.sms_url, token=settings.sms_token)
    with db.session() as s, s.begin():
        sent, failed = sms.deliver(s, adapter)
        pruned = throttle.prune(s)
    console.print(f"已发送 {sent} 条，失败 {failed} 条；清理过期限流记录 {pruned} 条")


@app.command("phone-on-record")
def phone_on_record(
    id_number: Annotated[str, typer.Argument(help="居民身份证号码")],
    phone: Annotated[str, typer.Argument(help="机构登记的手机号")],
    institution: Annotated[str | None, typer.Option(help="登记该号码的机构代码")] = None,
) -> None:
    """Note that an institution's records hold this phone for this person (codes go only there)."""
    db = Database.from_settings(Settings())
    with db.session() as s, s.begin():
        realname.record_person_phone(
            s,
            id_number=id_number.strip().upper(),
            phone=phone.strip(),
            source="cli",
            institution_code=institution,
        )
    console.print(f"已登记：{masking.mask_id(id_number)} → {masking.mask_phone(phone)}")
