"""Booking constants, small helpers, hospital rules and the calendar, shared by every booking module."""

from __future__ import annotations

import time as _time
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.booking import calendar as cal, rules as R
from rhip.booking.models import (
    CalendarOverride,
    Rule,
)
from rhip.clock import SHANGHAI, now
from rhip.errors import Invalid, NotFound
from rhip.registry import data as reg_data, directories, idnumber
from rhip.security.service import Principal, audit

TRANCHES = ("public", "family", "clinic")
TRANCHE_LABELS = {"public": "公众号源", "family": "家庭医生优先号源", "clinic": "诊间号源"}
STATUS_LABELS = {
    "held": "待支付",
    "booked": "已预约",
    "cancelled": "已取消",
    "checked_in": "已签到",
    "no_show": "爽约",
    "stopped": "停诊取消",
    "expired": "超时未支付",
    "excused": "爽约已申诉撤销",
}
CHANNEL_KEY_PREFIX = "ch:"  # third-party platforms hold kernel API keys bound to "ch:<channel code>"
RESIDENT_CHANNELS = ("web_12320", "wechat_12320", "jkn_app", "quick_12320")
TERMINAL_CHANNEL = "self_service"  # a self-service terminal's principal (via "terminal") books through it


# ------------------------------------------------------------------ helpers


def local_date(at: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant."""
    return at.astimezone(SHANGHAI).date()


def person_id(number: str) -> str:
    """A validated, normalised 18-digit resident ID number (GB 11643), or Invalid in Chinese."""
    plain = _plain_id(number)
    if plain is not None:
        return plain
    result = idnumber.validate_id(number or "")
    if not result.ok or not result.normalized:
        reason = "；".join(m for _r, m in result.errors) or "号码无效"
        raise Invalid(f"身份证号码无效：{reason}", code="bad-id-number")
    return result.normalized


_OLDEST: tuple[date, date] | None = None  # (today, the earliest birth date accepted today)


def _plain_id(number: str) -> str | None:
    """An 18-character number passing validate_id's hard rules, checked without building its report.

    Every booking checks the number (a sold-out answer too) and validate_id's report (area lookup,
    warnings) cost more than the rest of a sold-out answer; the hard rules are the same: 17 digits and
    a digit or X, the check character, a real birth date neither in the future nor older than the
    catalogue's max_age_years (the area code only warns). Anything else returns None: validate_id gives
    the reasons.
    """
    global _OLDEST
    if len(number) != 18 or not number.isascii() or not number[:17].isdigit():
        return None
    text = number.upper()
    if text[17] != idnumber.check_char(text[:17]):
        return None
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return None
    today = local_date(now())
    if _OLDEST is None or _OLDEST[0] != today:
        _OLDEST = (today, idnumber.years_before(today, idnumber.max_age_years()))
    return text if _OLDEST[1] <= born <= today else None


def hospital(code: str) -> reg_data.InstitutionRecord:
    """The registry's institution for a code, or NotFound."""
    record = reg_data.get(code)
    if record is None:
        raise NotFound(f"机构不存在：{code}", code="no-institution")
    return record


def department_name(code: str) -> str:
    """The 诊疗科目 name of a department code, or NotFound."""
    for d in directories.departments():
        if d.code == code:
            return d.name
    raise NotFound(f"科室代码不存在：{code}", code="no-department")


def channel_group(code: str) -> str:
    """The statistics group (online_12320, quick, phone, in_clinic, third_party, ...) of a channel."""
    for c in directories.channels():
        if c.code == code:
            return c.group
    raise Invalid(f"未知预约途径：{code}", code="bad-channel")


# ------------------------------------------------------------------ rules

_RULES_CACHE: dict[tuple[str, str], tuple[float, R.Rules]] = {}
RULES_TTL = 5.0


def _rule_values(row: Rule | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {name: getattr(row, name) for name in R.RULE_FIELDS}


def get_rules(session: Session, *, hospital_code: str) -> R.Rules:
    """The effective rules of a hospital: code defaults ← platform row '*' ← the hospital's row."""
    key = (str(session.get_bind().engine.url), hospital_code)
    hit = _RULES_CACHE.get(key)
    if hit and hit[0] > _time.monotonic():
        return hit[1]
    rows = {
        r.hospital_code: r
        for r in session.scalars(select(Rule).where(Rule.hospital_code.in_([R.PLATFORM, hospital_code])))
    }
    rules = R.merge(
        R.merge(R.Rules(), _rule_values(rows.get(R.PLATFORM))), _rule_values(rows.get(hospital_code))
    )
    _RULES_CACHE[key] = (_time.monotonic() + RULES_TTL, rules)
    return rules


def get_rule_overrides(session: Session, *, hospital_code: str) -> dict[str, Any]:
    """The values a hospital (or '*') sets itself; missing keys fall back to the defaults."""
    row = session.get(Rule, hospital_code)
    return {k: v for k, v in _rule_values(row).items() if v is not None}


def set_rules(session: Session, *, hospital_code: str, values: dict[str, Any], actor: Principal) -> R.Rules:
    """Set a hospital's (or the platform's, '*') rule overrides; None clears one."""
    if hospital_code != R.PLATFORM:
        hospital(hospital_code)
    unknown = set(values) - set(R.RULE_FIELDS)
    if unknown:
        raise Invalid(f"未知规则项：{', '.join(sorted(unknown))}", code="bad-rule")
    if hospital_code != R.PLATFORM and set(values) & R.PLATFORM_ONLY:
        names = ", ".join(sorted(set(values) & R.PLATFORM_ONLY))
        raise Invalid(f"以下规则只能在平台（*）设置：{names}", code="platform-rule")
    row = session.get(Rule, hospital_code) or Rule(hospital_code=hospital_code)
    for k, v in values.items():
        setattr(row, k, v)
    row.updated_by = actor.subject
    row.updated_at = now()
    R.check(R.merge(R.Rules(), _rule_values(row)))
    session.add(row)
    session.flush()
    _RULES_CACHE.clear()
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action="booking.rules",
        target=hospital_code,
        detail={k: v for k, v in values.items()},
    )
    return get_rules(session, hospital_code=hospital_code)


# ------------------------------------------------------------------ calendar


def calendar_overrides(session: Session) -> dict[date, str]:
    """Local changes to the built-in holiday calendar."""
    return {r.day: r.kind for r in session.scalars(select(CalendarOverride))}


def set_calendar_day(session: Session, *, day: date, kind: str, name: str) -> CalendarOverride:
    """Make a day a holiday or a working day locally (kind 'holiday' or 'workday')."""
    if kind not in ("holiday", "workday"):
        raise Invalid("kind 应为 holiday 或 workday", code="bad-calendar")
    row = session.get(CalendarOverride, day) or CalendarOverride(day=day)
    row.kind, row.name = kind, name
    session.add(row)
    session.flush()
    return row


def is_working_day(session: Session, *, day: date) -> bool:
    """Whether clinics run on a day: weekdays, minus holidays, plus 调休 working days."""
    return cal.is_working_day(day, calendar_overrides(session))
