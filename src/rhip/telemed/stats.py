# ruff: noqa: E501
"""The month's telemedicine figures and the bulletin's 远程医疗系统数据统计 paragraphs, in the seeds'
wording: connected totals by category, districts covered and not covered, the month's volumes and the
top 3 uploaders. Every figure is counted from the platform's own tables (docs/metrics.md, ## telemed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.registry import data as reg
from rhip.telemed import service as svc
from rhip.telemed.models import Collected, Event, Member, Report, Request, Specimen, Study

NUMS = "零一二三四五六七八九十"


@dataclass
class CentreMonth:
    """One centre's month: its coverage on the last day and its volumes."""

    code: str
    coverage: svc.Coverage
    volumes: dict[str, int] = field(default_factory=dict)
    top: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class TelemedMonth:
    """The five centres' figures for a month."""

    month: str
    centres: dict[str, CentreMonth]


def bounds(month: str) -> tuple[datetime, datetime, date]:
    """[start, end) of a YYYY-MM month in Nanjing time, and its last day."""
    y, m = (int(x) for x in month.split("-"))
    start = datetime(y, m, 1, tzinfo=clock.SHANGHAI)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end, end.date() - timedelta(days=1)


def _count(session: Session, stmt: Any) -> int:
    return int(session.scalar(stmt) or 0)


def _requests(session: Session, centre: str, start: datetime, end: datetime, *, consult: bool | None) -> Any:
    stmt = select(func.count()).where(
        Request.centre_code == centre, Request.requested_at >= start, Request.requested_at < end
    )
    if consult is True:
        stmt = stmt.where(Request.service_type == "consult")
    elif consult is False:
        stmt = stmt.where(Request.service_type != "consult")
    return stmt


def _top(rows: list[tuple[str, int]]) -> list[tuple[str, int]]:
    named = []
    for code, n in sorted(rows, key=lambda r: (-r[1], r[0]))[:3]:
        inst = reg.get(code)
        named.append((inst.name if inst else code, int(n)))
    return named


def month_figures(session: Session, *, month: str) -> TelemedMonth:
    """Every centre's coverage and volumes for a month."""
    start, end, last = bounds(month)
    out: dict[str, CentreMonth] = {}
    for code in svc.CENTRE_CODES:
        cm = CentreMonth(code=code, coverage=svc.coverage(session, centre_code=code, on=last))
        out[code] = cm
    ecg = out["ecg"]
    ecg.volumes["cases"] = _count(session, _requests(session, "ecg", start, end, consult=False))
    ecg.volumes["consults"] = _count(session, _requests(session, "ecg", start, end, consult=True))
    ecg.top = _top(
        session.execute(
            select(Request.requester_code, func.count())
            .where(
                Request.centre_code == "ecg",
                Request.service_type != "consult",
                Request.requested_at >= start,
                Request.requested_at < end,
            )
            .group_by(Request.requester_code)
        ).all()  # type: ignore[arg-type]
    )
    lab = out["lab"]
    rows = session.execute(
        select(Collected.institution_code, func.sum(Collected.count))
        .where(
            Collected.centre_code == "lab",
            Collected.kind == "lab_report",
            Collected.day >= start.date(),
            Collected.day <= last,
        )
        .group_by(Collected.institution_code)
    ).all()
    lab.volumes["reports"] = sum(int(n) for _c, n in rows)
    lab.top = _top([(c, int(n)) for c, n in rows])
    lab.volumes["specimens"] = _count(
        session, select(func.count()).where(Specimen.collected_at >= start, Specimen.collected_at < end)
    )
    img = out["imaging"]
    irows = session.execute(
        select(Study.institution_code, func.count(), func.sum(Study.instance_count))
        .where(Study.performed_at >= start, Study.performed_at < end)
        .group_by(Study.institution_code)
    ).all()
    img.volumes["reports"] = sum(int(n) for _c, n, _i in irows)
    img.volumes["images"] = sum(int(i or 0) for _c, _n, i in irows)
    img.top = _top([(c, int(n)) for c, n, _i in irows])
    img.volumes["consults"] = _count(session, _requests(session, "imaging", start, end, consult=True))
    path = out["pathology"]
    path.volumes["cases"] = _count(session, _requests(session, "pathology", start, end, consult=None))
    path.volumes["reports"] = _count(
        session,
        select(func.count())
        .select_from(Report)
        .join(Request, Request.id == Report.request_id)
        .where(Request.centre_code == "pathology", Report.issued_at >= start, Report.issued_at < end),
    )
    for kind in ("meeting", "lecture"):
        path.volumes[kind + "s"] = _count(
            session,
            select(func.count()).where(
                Event.centre_code == "pathology",
                Event.kind == kind,
                Event.held_at >= start,
                Event.held_at < end,
            ),
        )
    for role in ("expert", "doctor"):
        path.volumes[role + "s"] = _count(
            session,
            select(func.count()).where(
                Member.centre_code == "pathology", Member.role == role, Member.joined_on <= last
            ),
        )
    out["consult"].volumes["to_date"] = _count(
        session,
        select(func.count()).where(
            Request.centre_code == "consult", Request.status == "completed", Request.ended_at < end
        ),
    )
    return TelemedMonth(month=month, centres=out)


def _districts(names: list[str]) -> str:
    return "、".join(names)


def _top_text(top: list[tuple[str, int]]) -> str:
    return "，".join(f"{name} {n} 份" for name, n in top)


def paragraphs(fig: TelemedMonth) -> list[str]:
    """The 远程医疗系统数据统计 paragraphs (a centre with no connections is left out)."""
    m = int(fig.month[5:])
    out: list[str] = []
    c = fig.centres["consult"]
    cov = c.coverage
    if cov.total:
        cats = cov.by_category
        text = (
            f"南京市远程医学会诊平台累计接入 {cov.total} 家医疗机构，覆盖 {len(cov.districts_covered)} 个区"
        )
        text += (
            f"，未对接的有{_districts(cov.districts_not_covered)}。" if cov.districts_not_covered else "。"
        )
        text += (
            f"其中南京市内二级以上医疗机构 {cats['二级以上']} 家，社区卫生服务中心 {cats['社区']} 家，"
            f"南京都市圈城市 {cats['都市圈城市']} 家，对外帮扶医疗机构 {cats['对外帮扶']} 家，其他机构 {cats['其他']} 家"
        )
        done = c.volumes.get("to_date", 0)
        text += f"，累计通过平台开展各类会诊 {done} 次。" if done else "。"
        out.append(text)
    e = fig.centres["ecg"]
    cov = e.coverage
    if cov.total:
        n_other = len(cov.community_districts)
        missing = [d.name for d in reg.districts() if d.name not in cov.community_districts]
        com = (
            f"覆盖除{_districts(missing)}以外的 {n_other} 个区的社区卫生服务中心"
            if 1 <= len(missing) <= 2
            else f"覆盖 {n_other} 个区的社区卫生服务中心"
        )
        cities = (
            "、".join(cov.cities[:-1]) + "和" + cov.cities[-1] if len(cov.cities) > 1 else "".join(cov.cities)
        )
        text = (
            f"南京市远程心电监测诊断平台累计接入 {cov.total} 家医疗机构，联通{cities} {len(cov.cities)} 个城市。"
            f"其中，南京市内接入三级医院 {cov.tertiary_nanjing} 家，{com}以及南京都市圈城市 {cov.metro} 家医疗机构。"
            f"{m} 月份采集心电病例 {e.volumes['cases']} 份，会诊量 {e.volumes['consults']} 例。"
        )
        if e.top:
            text += f"{m} 月数据上传量排名前 {len(e.top)} 的分别是{_top_text(e.top)}。"
        out.append(text)
    lab = fig.centres["lab"]
    cov = lab.coverage
    if cov.total:
        text = f"南京市远程临检诊断平台累计接入 {cov.total} 家医疗机构，其中二级以上医疗机构 {cov.by_category['二级以上']} 家，覆盖 {len(cov.districts_covered)} 个区"
        text += (
            f"，未对接的有{_districts(cov.districts_not_covered)}。" if cov.districts_not_covered else "。"
        )
        text += f"{m} 月份共采集检验报告 {lab.volumes['reports']} 份，通过平台流转标本 {lab.volumes['specimens']} 份。"
        if lab.top:
            text += f"{m} 月数据上传量排名前 {len(lab.top)} 的分别是{_top_text(lab.top)}。"
        out.append(text)
    img = fig.centres["imaging"]
    cov = img.coverage
    if cov.total:
        text = f"南京市远程影像诊断平台累计接入 {cov.total} 家医疗机构，其中二级以上医疗机构 {cov.by_category['二级以上']} 家，覆盖 {len(cov.districts_covered)} 个区"
        text += (
            f"，未对接的有{_districts(cov.districts_not_covered)}。" if cov.districts_not_covered else "。"
        )
        text += f"{m} 月份共采集影像报告 {img.volumes['reports']} 份，图像量 {img.volumes['images']} 份，会诊 {img.volumes['consults']} 例。"
        if img.top:
            text += f"{m} 月数据上传量前 {len(img.top)} 的分别是{_top_text(img.top)}。"
        out.append(text)
    p = fig.centres["pathology"]
    if p.coverage.total:
        v = p.volumes
        out.append(
            f"南京市远程病理诊断系统累计接入医院 {p.coverage.total} 家、专家 {v['experts']} 人、医生 {v['doctors']} 人，"
            f"产生病例 {v['cases']} 条、报告 {v['reports']} 份，召开病例讨论会议 {v['meetings']} 次、视频讲座 {v['lectures']} 场。"
        )
    return out


def bulletin_sections(*, session: Session, lake: Any, month: str, **_: Any) -> list[dict[str, Any]]:
    """The bulletin's 远程医疗系统数据统计 section for a month (empty when nothing is connected)."""
    fig = month_figures(session, month=month)
    paras = paragraphs(fig)
    if not paras:
        return []
    y, m = int(month[:4]), int(month[5:])
    rows = []
    for code, cm in fig.centres.items():
        if cm.coverage.total:
            rows.append(
                [
                    svc.centre(code).name,
                    cm.coverage.total,
                    len(cm.coverage.districts_covered),
                    *(cm.volumes.get(k, 0) for k in ("cases", "reports", "images", "consults", "specimens")),
                ]
            )
    return [
        {
            "key": "telemed.month",
            "title": f"{y} 年 {m} 月南京市远程医疗系统数据统计",
            "order": 600,
            "paragraphs": paras,
            "tables": [
                {
                    "title": f"{y} 年 {m} 月远程医疗各中心业务量",
                    "sheet": "远程医疗",
                    "columns": [
                        {"title": "中心"},
                        {"title": "累计接入机构", "kind": "int"},
                        {"title": "覆盖区数", "kind": "int"},
                        {"title": "病例", "kind": "int"},
                        {"title": "报告", "kind": "int"},
                        {"title": "图像量", "kind": "int"},
                        {"title": "会诊", "kind": "int"},
                        {"title": "流转标本", "kind": "int"},
                    ],
                    "rows": rows,
                }
            ],
        }
    ]
