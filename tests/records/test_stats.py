"""Records figures: views and reminders counted per institution from the access log, records built, and
the 2018-03 lab/exam report upload table from the serving store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from rhip.clock import local_now
from rhip.db.engine import Database
from rhip.records import stats
from tests.records.conftest import City

H = Callable[..., dict[str, str]]


def test_usage_counts_allowed_views_and_reminders(
    client: TestClient, city: City, as_: H, db: Database
) -> None:
    month = local_now().strftime("%Y-%m")
    with db.session() as s, s.begin():
        before = {u.institution_code: u for u in stats.usage(s, month=month)}
    doc = as_("doctor", city.org_a, "dr-stats")
    client.get(f"/api/v1/records/{city.person}", headers=doc)
    client.get(f"/api/v1/records/{city.person}", headers=doc)
    client.post(
        f"/api/v1/records/{city.person}/reminders", json={"orders": [{"name": "血常规"}]}, headers=doc
    )
    client.get(f"/api/v1/records/{city.person}", headers=as_("doctor", city.org_c, "dr-refused"))  # refused
    with db.session() as s, s.begin():
        after = {u.institution_code: u for u in stats.usage(s, month=month)}
        sections = stats.bulletin_sections(session=s, lake=None, month=month)  # type: ignore[arg-type]
    a0 = before.get(city.org_a)
    assert after[city.org_a].views - (a0.views if a0 else 0) == 2
    assert after[city.org_a].reminders - (a0.reminders if a0 else 0) == 1
    c0 = before.get(city.org_c)
    assert (after.get(city.org_c).views if after.get(city.org_c) else 0) == (c0.views if c0 else 0)
    keys = [x["key"] for x in sections]
    assert keys == ["records.usage", "records.reports"]
    assert "健康档案调阅为老百姓提供服务达" in sections[0]["paragraphs"][0]
    table = sections[1]["tables"][0]
    assert [c["title"] for c in table["columns"]] == ["序号", "单位", "上传数量"] * 2
    assert "累计" in table["notes"][0]


def test_reports_uploaded_counts_lab_and_exam(city: City, db: Database) -> None:
    # the fixture's lab report is 2 days old (institution A), its CT 5 days (B)
    for org, days in ((city.org_a, 2), (city.org_b, 5)):
        month = (local_now() - timedelta(days=days)).strftime("%Y-%m")
        with db.session() as s, s.begin():
            rows, total = stats.reports_uploaded(s, month=month)
        per = dict(rows)
        assert per.get(org, 0) >= 1
        assert total >= sum(per.values())
