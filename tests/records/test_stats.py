"""Records figures: views and reminders counted per institution from the access log, records built, and
the 2018-03 lab/exam report upload table from the serving store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import delete, or_, select

from rhip.clock import local_now
from rhip.db.engine import Database
from rhip.lake.store import Lake
from rhip.records import service as records, stats
from rhip.records.models import RecordEntry, SyncedBatch
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


def test_rebuild_from_the_lake_equals_what_intake_absorbed(city: City, db: Database, lake: Lake) -> None:
    """The store kept at intake's commit and a rebuild from the lake by batch id hold the same entries."""
    mine = or_(RecordEntry.patient_key.in_([city.pid_a, city.pid_b]), RecordEntry.id_number == city.id_number)
    cols = (
        RecordEntry.institution_code,
        RecordEntry.source,
        RecordEntry.business_key,
        RecordEntry.kind,
        RecordEntry.occurred_at,
        RecordEntry.title,
        RecordEntry.code,
        RecordEntry.abnormal,
        RecordEntry.detail,
    )

    def snapshot() -> list[tuple[str, ...]]:
        with db.session() as s:
            rows = s.execute(select(*cols).where(mine, RecordEntry.source != "resident")).all()
            return sorted(tuple(str(x) for x in r) for r in rows)

    before = snapshot()
    assert len(before) == 6
    with db.session() as s, s.begin():
        s.execute(delete(SyncedBatch).where(SyncedBatch.batch_id.in_(city.batches)))
        s.execute(delete(RecordEntry).where(mine, RecordEntry.source != "resident"))
    assert snapshot() == []
    with db.session() as s, s.begin():
        assert records.absorb_batches(s, lake, city.batches) == 6
    assert snapshot() == before
