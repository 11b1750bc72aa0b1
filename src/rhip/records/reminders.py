"""Smart reminders (智能提示): the same test or exam done at any institution within its window (检查检验
结果互认), known allergies, overdue hypertension and diabetes follow-ups, abnormal recent results. The
rules are data (`data/reminders.yaml`); the same reminders answer the API and the CDS Hooks service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI, now
from rhip.records import service
from rhip.records.consent import Access
from rhip.records.models import RecordEntry
from rhip.registry import codes

DATA = Path(__file__).parent / "data" / "reminders.yaml"
CRITICAL_FLAGS = frozenset({"HH", "LL", "AA"})
ALLERGY = "allergy"


@dataclass(frozen=True)
class RepeatRule:
    """A test or exam whose result is recognised for `window_days` at every institution."""

    id: str
    label: str
    kind: str
    codes: tuple[str, ...]
    keywords: tuple[str, ...]
    window_days: int

    def matches(self, text: str, code: str | None) -> bool:
        """Whether an entry or order (title/name and code) is this item."""
        return self.matches_upper(text.upper(), code.upper() if code else None)

    def matches_upper(self, up: str, code: str | None) -> bool:
        """`matches` on a text and code already upper-cased."""
        return bool(code and code in self.codes) or any(k.upper() in up for k in self.keywords)


@dataclass(frozen=True)
class Rules:
    """All reminder rules."""

    repeat: tuple[RepeatRule, ...]
    followup: tuple[tuple[str, str, int], ...]  # (kind, label, max gap in days)
    abnormal_days: int
    allergy_critical: frozenset[str] = frozenset()  # severity codes that make an allergy critical
    allergy_max: int = 50


@cache
def rules() -> Rules:
    """The rules from the data file."""
    raw = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    return Rules(
        repeat=tuple(
            RepeatRule(
                r["id"], r["label"], r["kind"], tuple(r["codes"]), tuple(r["keywords"]), int(r["window_days"])
            )
            for r in raw["repeat"]
        ),
        followup=tuple((f["kind"], f["label"], int(f["max_gap_days"])) for f in raw["followup"]),
        abnormal_days=int(raw["abnormal_window_days"]),
        allergy_critical=frozenset(str(c) for c in raw["allergy"]["critical_severity"]),
        allergy_max=int(raw["allergy"]["max_reminders"]),
    )


@dataclass(frozen=True)
class Order:
    """An order the doctor is about to place: a name and maybe a code."""

    name: str
    code: str | None = None


@dataclass
class Reminder:
    """One reminder: what, how urgent, and the entries it rests on."""

    category: str  # repeat | allergy | followup | abnormal
    indicator: str  # info | warning | critical
    summary: str
    detail: str
    entries: list[int] = field(default_factory=list)
    rule: str | None = None


def _local_day(t: datetime) -> date:
    return t.astimezone(SHANGHAI).date()


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


@cache
def horizon_days() -> int:
    """How far back any rule looks (the reminders read no older entries, allergies apart)."""
    r = rules()
    return max(
        [x.window_days for x in r.repeat] + [r.abnormal_days] + [g for _k, _l, g in r.followup] + [400]
    )


def compute(
    session: Session, *, access: Access, orders: Sequence[Order] = (), at: datetime | None = None
) -> list[Reminder]:
    """The reminders for a person now (orders given: only the repeats those orders would make); one read
    of the entries within the rules' horizon and the allergies."""
    t = at or now()
    since = t - timedelta(days=horizon_days())
    entries = service.recent(session, access=access, since=since, always=(ALLERGY,))
    return evaluate(entries, orders=orders, at=t)


def for_view(
    session: Session, *, access: Access, entries: Sequence[RecordEntry], whole: bool
) -> list[Reminder]:
    """The reminders of a record being viewed: over the entries just read when they are the whole record
    (`whole`: unfiltered and not cut by the answer's limit), else from their own read."""
    return evaluate(entries) if whole else compute(session, access=access)


def evaluate(
    entries: Sequence[RecordEntry], *, orders: Sequence[Order] = (), at: datetime | None = None
) -> list[Reminder]:
    """The reminders over entries already read (newest first; those within the horizon and the allergies)."""
    r = rules()
    t = at or now()
    since = t - timedelta(days=horizon_days())
    entries = [e for e in entries if e.occurred_at >= since or e.kind == ALLERGY]
    out: list[Reminder] = []
    out += _repeats(entries, orders, r, t)
    out += _allergies(entries, r)
    out += _followups(entries, r, t)
    if not orders:
        out += _abnormal(entries, r, t)
    order = {"critical": 0, "warning": 1, "info": 2}
    out.sort(key=lambda x: order[x.indicator])
    return out


def _allergies(entries: Sequence[RecordEntry], r: Rules) -> list[Reminder]:
    """Every recorded allergy (WS 445 过敏史): the allergen, the reaction and how severe."""
    severity = codes.code_systems()["allergy_severity"].codes
    out = []
    for a in [e for e in entries if e.kind == ALLERGY][: r.allergy_max]:
        d = a.detail or {}
        sev = str(d.get("severity") or "")
        said = "，".join(x for x in (str(d.get("reaction") or ""), severity.get(sev, "")) if x)
        out.append(
            Reminder(
                "allergy",
                "critical" if sev in r.allergy_critical else "warning",
                (f"过敏史：{a.title}" + (f"（{said}）" if said else ""))[:140],
                f"{_local_day(a.occurred_at)} 记录于 {a.institution_code or '本人'}。"
                "开具药品和检查前请核对过敏史。",
                [a.id],
                "allergy",
            )
        )
    return out


def _repeats(
    entries: Sequence[RecordEntry], orders: Sequence[Order], r: Rules, t: datetime
) -> list[Reminder]:
    out = []
    # each entry's kind, time and upper-cased title and code read once (12 rules × every entry otherwise)
    by_kind: dict[str, list[tuple[RecordEntry, datetime, str, str | None]]] = {}
    for e in entries:
        code = e.code
        item = (e, e.occurred_at, e.title.upper(), code.upper() if code else None)
        by_kind.setdefault(e.kind, []).append(item)
    for rule in r.repeat:
        if orders and not any(rule.matches(o.name, o.code) for o in orders):
            continue
        since = t - timedelta(days=rule.window_days)
        kind = by_kind.get(rule.kind, ())
        done = [e for e, at, up, code in kind if at >= since and rule.matches_upper(up, code)]
        if not done:
            continue
        last = done[0]
        days = (t - last.occurred_at).days
        where = last.institution_code or "本人"
        out.append(
            Reminder(
                "repeat",
                "warning" if orders else "info",
                f"{rule.label}：{days} 天前已在 {where} 做过（互认期 {rule.window_days} 天）"[:140],
                f"最近一次：{_local_day(last.occurred_at)} {last.title}；"
                f"{rule.window_days} 天内共 {len(done)} 次。"
                "结果可互认，如无病情变化可不重复检查。",
                [e.id for e in done],
                rule.id,
            )
        )
    return out


def _followups(entries: Sequence[RecordEntry], r: Rules, t: datetime) -> list[Reminder]:
    out = []
    today = _local_day(t)
    for kind, label, gap in r.followup:
        mine = [e for e in entries if e.kind == kind]
        if not mine:
            continue
        last = mine[0]
        due = _day(last.detail.get("next_followup_date")) or (
            _local_day(last.occurred_at) + timedelta(days=gap)
        )
        if due < today:
            out.append(
                Reminder(
                    "followup",
                    "warning",
                    f"{label}已逾期 {(today - due).days} 天",
                    f"最近一次随访 {_local_day(last.occurred_at)}，应于 {due} 前随访。",
                    [last.id],
                    kind,
                )
            )
    return out


def _abnormal(entries: Sequence[RecordEntry], r: Rules, t: datetime) -> list[Reminder]:
    out = []
    since = t - timedelta(days=r.abnormal_days)
    for e in entries:
        if not e.abnormal or e.occurred_at < since:
            continue
        items = [i for i in e.detail.get("items", []) if i.get("abnormal_flag") not in (None, "", "N")]
        critical = any(i.get("abnormal_flag") in CRITICAL_FLAGS for i in items)
        what = "、".join(
            f"{i.get('item_name')} {i.get('result_value')}{i.get('unit') or ''}（{i.get('abnormal_flag')}）"
            for i in items[:5]
        )
        out.append(
            Reminder(
                "abnormal",
                "critical" if critical else "warning",
                f"近期异常：{e.title}（{_local_day(e.occurred_at)}）"[:140],
                what or str(e.detail.get("conclusion") or e.title),
                [e.id],
            )
        )
    return out[:20]
