"""The bulletin's booking tables, computed from the appointments table.

Definitions (docs/booking.md has them in full):
- a booking counts in the month it was MADE (created_at, Asia/Shanghai), whatever its later status,
  except unpaid holds that expired (never confirmed);
- 预约挂号服务统计 columns by channel group (LAYOUTS): 12320 在线预约 = online_12320 +
  community (12320 社区预约 is a 12320 self-service entry), 诊间预约 = in_clinic, 第三方 =
  third_party; hospital_own is not platform booking and is left out. The second column changed in
  2022: until then it was 电话预约, the hotline's phone bookings (its total is the hotline's 电话预约
  figure in 2018-03 and 2020-05), with 12320 快速预约 counted as online; since then it is 快速预约
  alone (its total is the 线上预约 table's 12320 快速预约 row in 2022-08, 2025-02 and 2025-03, a
  table that excludes phone bookings), and the phone bookings the hotline makes (channel
  phone_12320) are in no column: the note under the table gives them, once;
- 线上预约情况 lists every channel except phone, in-clinic and the hospitals' own (the bulletin's note);
- 社区预约 by district: bookings made by family doctors (community channel) counted in the district of
  their community centre, plus bookings at community centres, in the centre's district;
- 排班开放周数 comes from each hospital's effective rules (release days, family-doctor window).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import months
from rhip.booking import common
from rhip.booking.models import Appointment, Schedule
from rhip.clock import SHANGHAI
from rhip.registry import data as reg_data, directories

_COMMON = {"online_12320": "12320 在线预约", "community": "12320 在线预约", "in_clinic": "诊间预约"}
# (first month, columns, channel group → column): the 预约挂号服务统计 layouts, newest last
LAYOUTS: list[tuple[str, list[str], dict[str, str]]] = [
    (
        "2000-01",
        ["12320 在线预约", "电话预约", "诊间预约", "第三方"],
        {**_COMMON, "quick": "12320 在线预约", "phone": "电话预约", "third_party": "第三方"},
    ),
    (
        "2022-01",
        ["12320 在线预约", "快速预约", "诊间预约", "第三方"],
        {**_COMMON, "quick": "快速预约", "third_party": "第三方"},
    ),
]
HOSPITAL_COLUMNS = LAYOUTS[-1][1]
NOT_ONLINE = ("phone", "in_clinic", "hospital_own")
OWNERSHIP_ORDER = ["市属", "省属", "区属", "部队", "民营", "其他"]
OWNERSHIP_LABEL = {"市属": "市属医院", "省属": "省属医院", "区属": "区属医院", "部队": "部队医院"}


@dataclass
class Table:
    """One bulletin table: title, Chinese column headers, rows, an optional note under it."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _group_of() -> dict[str, str]:
    return {c.code: c.group for c in directories.channels()}


def counts_by_hospital_channel(session: Session, *, month: str) -> dict[tuple[str, str], int]:
    """Bookings made in a month by (hospital code, channel code)."""
    start, end = months.time_bounds(month, SHANGHAI)
    rows = session.execute(
        select(Appointment.hospital_code, Appointment.channel, func.count())
        .where(
            Appointment.created_at >= start,
            Appointment.created_at < end,
            Appointment.status != "expired",
        )
        .group_by(Appointment.hospital_code, Appointment.channel)
    ).all()
    return {(h, c): int(n) for h, c, n in rows}


def layout(month: str) -> tuple[list[str], dict[str, str]]:
    """The month's 预约挂号服务统计 columns and which channel group goes to which."""
    columns, mapping = next((c, m) for first, c, m in reversed(LAYOUTS) if month >= first)
    return columns, mapping


def hospital_rows(
    counts: dict[tuple[str, str], int], groups: dict[str, str], month: str
) -> tuple[list[str], dict[str, dict[str, int]], int]:
    """Bookings per hospital by the month's columns, and the phone bookings no column holds."""
    columns, mapping = layout(month)
    per: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(columns, 0))
    phone_apart = 0
    for (hosp, chan), n in counts.items():
        group = groups.get(chan, "")
        column = mapping.get(group)
        if column:
            per[hosp][column] += n
        elif group == "phone":
            phone_apart += n
    return columns, dict(per), phone_apart


def hospital_table(session: Session, *, month: str) -> Table:
    """预约挂号服务统计: per hospital, by channel column, with 小计 and a 合计 row (largest first)."""
    counts = counts_by_hospital_channel(session, month=month)
    columns, per, phone_apart = hospital_rows(counts, _group_of(), month)
    ordered = sorted(per.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    table = Table(
        key="booking_by_hospital",
        title=f"{months.label(month)} 12320 预约挂号服务统计",
        columns=["序号", "单位", *columns, "小计"],
    )
    if phone_apart:
        table.note = (
            f"另有 12320 电话预约 {phone_apart} 次（热线坐席代约，"
            "计入 12320 卫生热线“电话预约”），不在上表各列"
        )
    totals = dict.fromkeys(columns, 0)
    for i, (code, cols) in enumerate(ordered, 1):
        inst = reg_data.get(code)
        table.rows.append([i, inst.name if inst else code, *cols.values(), sum(cols.values())])
        for k, v in cols.items():
            totals[k] += v
    table.rows.append(["合计", "", *totals.values(), sum(totals.values())])
    return table


def platform_table(session: Session, *, month: str) -> Table:
    """线上预约情况: bookings per online platform (no phone, in-clinic or hospitals' own), with 合计."""
    names = {c.code: (c.name, c.group, c.sort_order) for c in directories.channels()}
    per: dict[str, int] = defaultdict(int)
    for (_hosp, chan), n in counts_by_hospital_channel(session, month=month).items():
        if chan in names and names[chan][1] not in NOT_ONLINE:
            per[chan] += n
    ordered = sorted(per.items(), key=lambda kv: (-kv[1], names[kv[0]][2]))
    table = Table(
        key="booking_by_platform",
        title=f"{months.label(month)}线上预约情况统计",
        columns=["序号", "名称", "预约数量"],
        note="（不包含 12320 电话预约、医院诊间预约、医院自有途径预约）",
    )
    for i, (chan, n) in enumerate(ordered, 1):
        table.rows.append([i, names[chan][0], n])
    table.rows.append(["合计", "", sum(per.values())])
    return table


def cumulative_total(session: Session, *, month: str, baseline: int = 0) -> int:
    """总预约挂号量: bookings made up to the month's end, plus those made before the platform's data."""
    _start, end = months.time_bounds(month, SHANGHAI)
    n = session.scalar(
        select(func.count()).where(Appointment.created_at < end, Appointment.status != "expired")
    )
    return baseline + int(n or 0)


def community_table(session: Session, *, month: str) -> Table:
    """社区预约 by district: community centres taking part, family doctors, history and the month."""
    start, end = months.time_bounds(month, SHANGHAI)
    groups = _group_of()
    community_channels = [c for c, g in groups.items() if g == "community"]
    rows = session.execute(
        select(
            Appointment.hospital_code,
            Appointment.actor_institution,
            Appointment.channel,
            Appointment.created_by,
            Appointment.created_at,
        ).where(Appointment.created_at < end, Appointment.status != "expired")
    ).all()
    history: dict[str, int] = defaultdict(int)
    this_month: dict[str, int] = defaultdict(int)
    centres: dict[str, set[str]] = defaultdict(set)
    doctors: dict[str, set[str]] = defaultdict(set)
    for hosp, actor_inst, chan, by, at in rows:
        code = actor_inst if chan in community_channels else hosp
        inst = reg_data.get(code) if code else None
        if inst is None or inst.kind != "community_health_centre" or not inst.district:
            continue
        d = inst.district
        history[d] += 1
        centres[d].add(code or "")
        if chan in community_channels:
            doctors[d].add(by)
        if at >= start:
            this_month[d] += 1
    published = session.execute(
        select(Schedule.hospital_code).where(Schedule.created_at < end).group_by(Schedule.hospital_code)
    ).scalars()
    for code in published:
        inst = reg_data.get(code)
        if inst is not None and inst.kind == "community_health_centre" and inst.district:
            centres[inst.district].add(code)
    table = Table(
        key="community_booking",
        title=f"{months.label(month)}南京 12320 社区预约统计",
        columns=["行政区", "接入社区机构数量", "家庭签约医生数量", "历史预约量", f"{int(month[5:])}月预约量"],
    )
    totals = [0, 0, 0, 0]
    for district in reg_data.districts():
        name = district.name
        vals = [len(centres[name]), len(doctors[name]), history[name], this_month[name]]
        table.rows.append([name, *vals])
        totals = [a + b for a, b in zip(totals, vals, strict=True)]
    table.rows.append(["合计", *totals])
    return table


def _weeks(days: int) -> str:
    return "一周" if days == 7 else ("两周" if days == 14 else f"{days} 天")


def opening_table(session: Session, *, month: str) -> Table:
    """排班开放周数: how far ahead each hospital with schedules opens to the public and to family doctors."""
    start, end = months.time_bounds(month, SHANGHAI)
    codes = session.execute(
        select(Schedule.hospital_code)
        .where(Schedule.service_date >= start.date(), Schedule.service_date < end.date())
        .group_by(Schedule.hospital_code)
    ).scalars()
    entries = []
    for code in codes:
        inst = reg_data.get(code)
        if inst is None or inst.kind == "community_health_centre":
            continue
        rules = common.get_rules(session, hospital_code=code)
        share = rules.family_share(tertiary=inst.tertiary)
        if share <= 0:
            family = "未开放"
        elif rules.family_days_earlier >= 7:
            family = "第二周"
        else:
            family = f"第二周前 {rules.family_days_earlier}天"
        kind = OWNERSHIP_LABEL.get(inst.ownership, "其他医院")
        order = OWNERSHIP_ORDER.index(inst.ownership) if inst.ownership in OWNERSHIP_ORDER else 99
        entries.append((order, inst.sort_order, kind, inst.name, _weeks(rules.release_days_ahead), family))
    table = Table(
        key="schedule_opening",
        title=f"{months.label(month)}南京市各医疗卫生机构排班开放统计",
        columns=["类型", "医院名称", "12320 预约平台排班开放周数", "社区预约优先排班开放周数"],
    )
    for _o, _s, kind, name, public, family in sorted(entries):
        table.rows.append([kind, name, public, family])
    return table


def all_tables(session: Session, *, month: str, baseline: int = 0) -> dict[str, Any]:
    """Every booking table of a month, JSON-ready (the bulletin collects these)."""
    total = cumulative_total(session, month=month, baseline=baseline)
    return {
        "month": month,
        "tables": [
            hospital_table(session, month=month).as_dict(),
            platform_table(session, month=month).as_dict(),
            community_table(session, month=month).as_dict(),
            opening_table(session, month=month).as_dict(),
        ],
        "cumulative_total": total,
        "cumulative_note": f"（截止 {months.label(month)}，总预约挂号量为 {total} 次）",
    }


def _local_day(session: Session) -> Any:
    """SQL for an appointment's booking day in Asia/Shanghai ('YYYY-MM-DD' text)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", Appointment.created_at), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", Appointment.created_at, "+8 hours")  # UTC text; China has no DST


def months_with_data(session: Session) -> dict[str, int]:
    """Booking days per month in which bookings were made, oldest first (the month picker)."""
    day = _local_day(session)
    rows = session.execute(select(day).where(Appointment.status != "expired").distinct())
    return months.count_days(str(d) for (d,) in rows if d)


def daily_counts(session: Session, *, month: str) -> dict[str, int]:
    """Bookings made on each day of a month (every day, zero included), by booking day in Asia/Shanghai."""
    start, end = months.time_bounds(month, SHANGHAI)
    day = _local_day(session)
    rows = session.execute(
        select(day, func.count())
        .where(Appointment.created_at >= start, Appointment.created_at < end, Appointment.status != "expired")
        .group_by(day)
    ).all()
    got = {str(d): int(n) for d, n in rows}
    first, last = months.day_bounds(month)
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    return {d: got.get(d, 0) for d in days}


def channel_counts(session: Session, *, month: str) -> dict[str, int]:
    """Bookings made in a month per channel (Chinese names), largest first."""
    names = {c.code: c.name for c in directories.channels()}
    per: dict[str, int] = defaultdict(int)
    for (_hosp, chan), n in counts_by_hospital_channel(session, month=month).items():
        per[names.get(chan, "社区卫生服务中心" if reg_data.get(chan) else chan)] += n
    return dict(sorted(per.items(), key=lambda kv: -kv[1]))


_COUNT_HEADERS = ("预约数量", "小计", "接入社区机构数量", "家庭签约医生数量", "历史预约量")


def _kind(header: str) -> str:
    """A column's kind in the bulletin: the channel and count columns are integers."""
    channel_columns = {c for _first, cols, _map in LAYOUTS for c in cols}
    if header in _COUNT_HEADERS or header.endswith("月预约量") or header in channel_columns:
        return "int"
    return "text"


def bulletin_sections(*, session: Session, lake: Any, month: str) -> list[dict[str, Any]]:
    """12320 预约挂号服务统计, 线上预约情况, 社区预约 and 排班开放 (the bulletin's provider hook).

    The cumulative total counts the platform's own bookings: the pre-platform history the demo adds for
    the seeds' figure lives with the demo, not here."""
    data = all_tables(session, month=month)
    tables = data["tables"]
    if not any(len(t["rows"]) > 1 for t in tables[:2]):
        return []
    sheets = {
        "booking_by_hospital": "预约挂号",
        "booking_by_platform": "线上预约",
        "community_booking": "社区预约",
        "schedule_opening": "排班开放",
    }
    out = []
    for t in tables:
        out.append(
            {
                "title": t["title"],
                "sheet": sheets[t["key"]],
                "columns": [{"title": c, "kind": _kind(c)} for c in t["columns"]],
                "rows": t["rows"],
                "notes": [t["note"]] if t["note"] else [],
            }
        )
    out[0]["notes"].append(data["cumulative_note"])
    return [
        {
            "key": "booking.month",
            "title": f"{months.label(month)} 12320 预约挂号服务统计",
            "order": 310,
            "tables": out,
        }
    ]
