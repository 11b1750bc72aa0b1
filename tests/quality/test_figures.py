"""Each figure of the data-collection tables against a small hand-built month written through intake.

Every test uses its own month and institution, so the shared SQL database's counts do not mix.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rhip.lake.store import Lake
from rhip.quality import figures, layouts, service, units as quality_units, verify
from rhip.registry import catalogue
from tests.quality.conftest import Uploader, later, patient, row, stay, unique, visit


def _figures(session, lake, month):  # type: ignore[no-untyped-def]
    with session.begin():
        return figures.month_figures(session, lake=lake, month=month)


def _unit(session, lake, month, code):  # type: ignore[no-untyped-def]
    """A unit's figures (from intake's rollups), checked against a recount of the lake's records.

    Only this unit is compared: the tests share one SQL database (and so the rollups) but not one lake.
    """
    with session.begin():
        assert verify.differences(session, lake=lake, month=month, units=[code]) == []
        return figures.month_figures(session, lake=lake, month=month).get(code)


@pytest.fixture(scope="module")
def month_lake(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake shared by the tests of one hand-built month (one per database backend)."""
    return Lake(tmp_path_factory.mktemp(f"quality-lake-{backend}"))


@pytest.fixture(scope="module")
def hospital_month(app_, month_lake: Lake):  # type: ignore[no-untyped-def]
    """南京市第一医院 (H021), 2024-11: visits, a revocation, a duplicate, a rejection, real time, a stay."""
    uploader = Uploader(app_.state.db, month_lake)
    org = "H021"
    pid = unique("P")
    v1 = visit(org, "2024-11-03 09:00:00", "100.50", pid=pid)
    v2 = visit(org, "2024-11-05 10:00:00", "200", pid=pid)
    v3 = visit(org, "2024-11-05 11:00:00", "300", pid=pid)
    gone = visit(org, "2024-11-05 12:00:00", "999", pid=pid)
    october = visit(org, "2024-10-31 23:00:00", "50", pid=pid)  # collected 1 Nov 05:00, counts in October
    bad = visit(org, "2024-11-05 13:00:00", "70", pid=pid, visit_type="99")
    adm, dis = stay(
        org,
        "2024-11-08 10:00:00",
        "2024-11-10 10:00:00",
        "5000",
        pid=pid,
        admission_collected="2024-11-08 10:02:00",
    )
    uploader.send(
        org,
        {
            "patient_info": [patient(org, pid)],
            "outpatient_visit": [v1, v2, v3, gone, october, bad],
            "admission": [adm],
            "discharge_summary": [dis],
        },
    )
    revoke = dict(gone, change_flag="3", updated_at="2024-11-06 09:00:00", collected_at="2024-11-06 09:00:00")
    uploader.send(org, {"outpatient_visit": [revoke, v1]})  # v1 again: a duplicate
    rt = visit(org, "2024-11-07 09:00:00", "49.50", pid=pid, collected="2024-11-07 09:05:00")
    # real time, but collected just after midnight: a December upload day, a November visit
    midnight = visit(org, "2024-11-30 23:50:00", "10", pid=pid, collected="2024-12-01 00:10:00")
    uploader.send(org, {"outpatient_visit": [rt, midnight]}, channel="realtime")
    return org


def test_visits_revenue_and_discharges(hospital_month, session, month_lake):  # type: ignore[no-untyped-def]
    u = _unit(session, month_lake, "2024-11", hospital_month)
    # v1, v2, v3, rt, midnight: not the revoked, the October, the rejected one or the re-send
    assert u.visits == 5
    assert u.visit_revenue == pytest.approx(100.5 + 200 + 300 + 49.5 + 10)
    assert layouts.collection_row(u)[5] == 0.66  # 收入（千元）, two decimals
    assert (u.discharges, u.inpatient_revenue) == (1, 5000.0)


def test_uploads_days_and_forms(hospital_month, session, month_lake):  # type: ignore[no-untyped-def]
    u = _unit(session, month_lake, "2024-11", hospital_month)
    # every record received with 数据采集时间 in November: first batch 1 patient + 6 visits + admission +
    # discharge, second batch 2, real time 1 (the midnight one was collected in December)
    assert u.uploads == 12
    # real-time records (collected within an hour of the event) on 7 (visit) and 8 (admission) November
    assert u.upload_days == 2
    assert u.active_days == 30
    assert (u.forms, u.forms_of) == (2, catalogue.REALTIME_FORMS)
    assert layouts.collection_row(u)[3] == "2/12"


def test_realtime_compliance(hospital_month, session, month_lake):  # type: ignore[no-untyped-def]
    u = _unit(session, month_lake, "2024-11", hospital_month)
    assert u.visits_realtime == 2
    assert u.visit_compliance == pytest.approx(2 / 5)
    assert u.discharge_compliance == 0.0


def test_upload_rate_against_statistics_report(hospital_month, session, month_lake):  # type: ignore[no-untyped-def]
    text = "month,institution,visits,discharges\n2024-11,南京市第一医院,10,\n"
    with session.begin():
        assert service.import_statistics(session, text=text, source="wt.csv") == 1
    u = _unit(session, month_lake, "2024-11", hospital_month)
    assert u.stat_visits == 10 and u.stat_discharges is None
    assert u.visit_upload_rate == pytest.approx(0.5)
    row_ = layouts.supplement_row(u)
    assert row_[7] == 0.5 and row_[9] == "未获取卫统数据"


def test_declared_over_required_tables(session, lake):  # type: ignore[no-untyped-def]
    with session.begin():
        service.declare(
            session, institution_code="H022", tables=["outpatient_visit", "admission"], declared_by="t"
        )
    figs = _figures(session, lake, "2024-06")
    u = figs.get("H022")
    medical = [d for d in catalogue.datasets() if d.category == "medical"]
    assert (u.declared, u.required) == (2, len(medical))
    assert layouts.supplement_row(u)[2] == f"2/{len(medical)}"
    assert figs.get("H023").declared is None
    assert layouts.supplement_row(figs.get("H023"))[2].startswith("未反馈/")
    assert figs.get("D320102").required == len(catalogue.datasets())


def test_district_rolls_up_platform_and_members(uploader, session, lake):  # type: ignore[no-untyped-def]
    platform, centre = "D320111", "C32011101"  # 浦口区 platform and one of its community centres
    pid1, pid2 = unique("P"), unique("P")
    uploader.send(
        platform,
        {
            "patient_info": [patient(platform, pid1)],
            "outpatient_visit": [
                visit(platform, "2024-09-02 09:00:00", "10", pid=pid1, collected="2024-09-02 09:01:00")
            ],
        },
    )
    uploader.send(
        centre,
        {
            "patient_info": [patient(centre, pid2)],
            "outpatient_visit": [
                visit(centre, "2024-09-04 09:00:00", "20", pid=pid2, collected="2024-09-04 09:01:00")
            ],
        },
    )
    u = _unit(session, lake, "2024-09", platform)
    assert u.name == "浦口区" and u.kind == "district"
    assert (u.visits, u.visit_revenue, u.upload_days) == (2, 30.0, 2)


def test_health_record_totals_are_cumulative(uploader, session, lake):  # type: ignore[no-untyped-def]
    org = "D320116"  # 六合区
    recs = [
        row(
            "health_record",
            org,
            record_no=unique("R"),
            created_at=d,
            collected_at="2024-08-01 08:00:00",
            updated_at="2024-08-01 08:00:00",
        )
        for d in ("2023-05-01", "2024-07-10", "2024-08-20")
    ]
    fu = [
        row(
            "hypertension_followup",
            org,
            followup_no=unique("F"),
            record_no=recs[0]["record_no"],
            followup_date=d,
            collected_at="2024-08-01 08:00:00",
            updated_at="2024-08-01 08:00:00",
        )
        for d in ("2024-06-01", "2024-07-01")
    ]
    dm = [
        row(
            "diabetes_followup",
            org,
            followup_no=unique("F"),
            record_no=recs[1]["record_no"],
            followup_date="2024-07-15",
            collected_at="2024-08-01 08:00:00",
            updated_at="2024-08-01 08:00:00",
        )
    ]
    uploader.send(org, {"health_record": recs, "hypertension_followup": fu, "diabetes_followup": dm})
    u = _unit(session, lake, "2024-07", org)
    # up to the end of July: two records, one hypertension patient (two follow-ups), one diabetes patient
    assert (u.records_basic, u.records_hypertension, u.records_diabetes) == (2, 1, 1)


def test_active_days_adjusted_for_joining_and_leaving():
    assert quality_units.active_days("2025-02", None, None) == 28
    assert quality_units.active_days("2024-02", None, None) == 29
    assert quality_units.active_days("2025-03", date(2025, 3, 10), None) == 22
    assert quality_units.active_days("2025-03", None, date(2025, 3, 10)) == 10
    assert quality_units.active_days("2025-03", date(2025, 4, 1), None) == 0


def test_cumulative_stored_records(uploader, session, lake):  # type: ignore[no-untyped-def]
    before = _figures(session, lake, "2023-01").cumulative
    org, pid = "H024", unique("P")
    uploader.send(org, {"patient_info": [dict(patient(org, pid), collected_at="2022-12-05 08:00:00")]})
    after = _figures(session, lake, "2023-01").cumulative
    assert after - before == 1
    assert layouts.cumulative_text(30_490_000_000) == "304.90 亿条"
    assert layouts.cumulative_text(12345) == "12,345 条"


def test_cda_documents_counted(session, lake):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from rhip.intake.models import CdaDocument, IntakeBatch

    with session.begin():
        bid = f"B2024050112{unique('')}"
        session.add(
            IntakeBatch(
                id=bid,
                institution_code="H026",
                channel="cda",
                status="committed",
                submitted_by="t",
                files=[],
                lake_tables=[],
            )
        )
        session.flush()
        for i in range(2):
            session.add(
                CdaDocument(
                    batch_id=bid,
                    institution_code="H026",
                    document_id=unique("DOC"),
                    doc_type="C0001",
                    title="门诊摘要",
                    received_at=datetime(2024, 5, 3 + i, tzinfo=UTC),
                    sha256="0" * 64,
                    content="<x/>",
                )
            )
    assert _unit(session, lake, "2024-05", "H026").cda == 2


def test_corrections_and_revocations_follow_the_current_version(uploader, session, lake):  # type: ignore[no-untyped-def]
    org, pid = "H028", unique("P")  # 南京市中西医结合医院, April 2024
    kept = visit(org, "2024-04-03 09:00:00", "100", pid=pid)
    moved = visit(org, "2024-04-30 20:00:00", "200", pid=pid)
    gone = visit(org, "2024-04-05 09:00:00", "300", pid=pid)
    rec = row(
        "health_record",
        org,
        record_no=unique("R"),
        created_at="2024-04-02",
        collected_at="2024-04-02 08:00:00",
        updated_at="2024-04-02 08:00:00",
    )
    uploader.send(org, {"patient_info": [patient(org, pid)], "outpatient_visit": [kept, moved, gone]})
    uploader.send(org, {"health_record": [rec]})
    assert _unit(session, lake, "2024-04", org).visits == 3

    def fix(r: dict[str, str], flag: str, **kw: str) -> dict[str, str]:
        when = kw.get("visit_time", r.get("visit_time", ""))
        return dict(
            r, change_flag=flag, updated_at=later(when, timedelta(hours=1)), collected_at=later(when), **kw
        )

    uploader.send(
        org,
        {
            "outpatient_visit": [
                fix(kept, "2", fee_total="150"),
                # the visit time was wrong: the corrected record belongs to May
                fix(moved, "2", visit_time="2024-05-01 08:00:00"),
                fix(gone, "3"),
            ],
            "health_record": [dict(rec, change_flag="3", updated_at="2024-04-20 08:00:00")],
        },
    )
    april, may = _unit(session, lake, "2024-04", org), _unit(session, lake, "2024-05", org)
    assert (april.visits, april.visit_revenue) == (1, 150.0)
    assert (may.visits, may.visit_revenue) == (1, 200.0)
    assert april.records_basic == 0
    assert figures.visit_history(session, lake=lake, month="2024-05", months=2)[org] == {
        "2024-04": 1,
        "2024-05": 1,
    }


def test_pyarrow_fallback_gives_the_same_figures(hospital_month, session, month_lake, monkeypatch):  # type: ignore[no-untyped-def]
    from rhip.quality import lakeread

    def recounted():  # type: ignore[no-untyped-def]
        with session.begin():
            return figures.month_figures(session, lake=month_lake, month="2024-11", recount=True).get(
                hospital_month
            )

    native = recounted()
    assert native.upload_days == 2
    lakeread.clear_cache()
    monkeypatch.setattr(lakeread, "_native_files", lambda dt, orgs=None: None)  # all through PyArrow datasets
    fallback = recounted()
    lakeread.clear_cache()
    assert fallback == native
