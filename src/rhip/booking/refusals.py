"""The rules that refuse a booking, and their Chinese messages: one table for both backends' paths
(booker.book on SQLite, the codes rhip_book answers on PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, NoReturn

from rhip.booking import rules as R
from rhip.booking.common import TRANCHE_LABELS
from rhip.booking.models import COUNTING, Slot
from rhip.clock import SHANGHAI
from rhip.errors import Conflict, Forbidden, NotFound
from rhip.security.roles import Role
from rhip.security.service import Principal


def refuse(code: str, tranche: str, *, at: datetime | None = None, n: int | None = None) -> NoReturn:
    """Raise the refusal a rule code stands for, with its Chinese message (both backends' paths)."""
    if code == "no-slot":
        raise NotFound("号源时段不存在", code=code)
    if code in _FORBIDDEN:
        raise Forbidden(_FORBIDDEN[code], code=code)
    local = at.astimezone(SHANGHAI) if at else None
    if code == "not-released":
        when = f"，将于 {local:%Y-%m-%d %H:%M} " if local else "，"
        if tranche == "family":
            raise Conflict(f"家庭医生优先号源尚未开放{when}开放", code=code)
        raise Conflict(f"号源尚未开放{when}放号", code=code)
    if code == "suspended":
        until = f"至 {local:%Y-%m-%d}" if local else ""
        raise Conflict(f"因多次爽约，预约功能暂停{until}（可申诉）", code=code)
    messages = {
        "slot-stopped": "该时段已停诊",
        "slot-past": "该时段已开始或已结束，不能再预约",
        "slot-full": f"该时段{TRANCHE_LABELS.get(tranche, tranche)}已约满",
        "idempotency-key-reused": "幂等键已用于另一笔预约",
        "not-signed": "该居民未与本机构家庭医生签约，不能使用优先号源",
        "limit-department": f"同一就诊人同一天在同一医院同一科室最多预约 {n} 个号",
        "limit-daily": f"同一就诊人同一天最多预约 {n} 个号",
        "limit-weekly": f"同一就诊人任意 7 天内最多预约 {n} 个号",
    }
    if code not in messages:
        # a code this version does not know (a newer database function, a typo): a refusal all the same,
        # never a KeyError answered as 500
        log.warning("booking refused with an unknown rule code %r", code)
        raise Conflict("预约未成功：不符合预约规则", code="refused", rule=code)
    raise Conflict(messages[code], code=code)


log = logging.getLogger(__name__)
_FORBIDDEN = {
    "family-only": "家庭医生优先号源只对签约家庭医生开放",
    "clinic-only": "诊间号源只供本院医生诊间预约",
    "other-hospital": "只能在本院诊间预约本院号源",
}


def refuse_slot(slot: Slot, tranche: str, t: datetime, actor: Principal) -> None:
    """Raise the rule that refuses this slot to this tranche now (reads only)."""
    if slot.status != "open":
        refuse("slot-stopped", tranche)
    if slot.starts_at <= t:
        refuse("slot-past", tranche)
    if tranche == "public" and slot.public_release_at > t:
        refuse("not-released", tranche, at=slot.public_release_at)
    if tranche == "family":
        if actor.role is not Role.family_doctor:
            refuse("family-only", tranche)
        if slot.family_release_at > t:
            refuse("not-released", tranche, at=slot.family_release_at)
    if tranche == "clinic":
        if actor.role is not Role.doctor:
            refuse("clinic-only", tranche)
        if actor.institution_code != slot.hospital_code:
            refuse("other-hospital", tranche)
    booked = {"public": slot.booked_public, "family": slot.booked_family, "clinic": slot.booked_clinic}
    cap = {"public": slot.cap_public, "family": slot.cap_family, "clinic": slot.cap_clinic}
    if booked[tranche] >= cap[tranche]:
        refuse("slot-full", tranche)


def check_limits(all_rows: list[Any], pid: str, slot: Slot, rules: R.Rules) -> None:
    """Raise the per-person limit a booking of this slot would break (1/department-day, 2/day, 3/7 days)."""
    day = slot.service_date
    rows = [
        (r.service_date, r.hospital_code, r.department_code)
        for r in all_rows
        if r.status in COUNTING and r.person_id == pid and abs((r.service_date - day).days) <= 6
    ]
    same_dept = sum(
        1 for d, h, dep in rows if d == day and h == slot.hospital_code and dep == slot.department_code
    )
    if same_dept >= rules.limit_dept_day:
        refuse("limit-department", "public", n=rules.limit_dept_day)
    if sum(1 for d, _h, _dep in rows if d == day) >= rules.limit_day:
        refuse("limit-daily", "public", n=rules.limit_day)
    for start in (day - timedelta(days=k) for k in range(7)):
        end = start + timedelta(days=6)
        if sum(1 for d, _h, _dep in rows if start <= d <= end) >= rules.limit_week:
            refuse("limit-weekly", "public", n=rules.limit_week)
