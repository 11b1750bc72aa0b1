"""The Task state machine, turnaround arithmetic on hand-made timelines, connections and coverage."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from rhip.errors import Conflict, Forbidden, Invalid
from rhip.telemed import service as svc, workflow
from tests.telemed.conftest import HUB_IMAGING, PID, REQUESTER, T0

STATES = list(workflow.ALLOWED)


@pytest.mark.parametrize("current", STATES)
@pytest.mark.parametrize("target", STATES)
def test_every_pair_of_states(current: str, target: str) -> None:
    legal = {
        ("requested", "accepted"), ("requested", "rejected"), ("requested", "cancelled"),
        ("accepted", "in_progress"), ("accepted", "rejected"), ("accepted", "cancelled"),
        ("in_progress", "completed"), ("in_progress", "cancelled"),
    }  # fmt: skip
    if (current, target) in legal:
        workflow.check_transition(current, target, "原因")
    else:
        with pytest.raises(Conflict) as exc:
            workflow.check_transition(current, target, "原因")
        assert exc.value.code == "illegal-transition" and exc.value.status == 409


def test_reject_and_cancel_need_a_reason() -> None:
    for target in ("rejected", "cancelled"):
        with pytest.raises(Invalid, match="原因"):
            workflow.check_transition("requested", target, "  ")


def test_median_and_p90_nearest_rank() -> None:
    assert workflow.median([]) is None and workflow.p90([]) is None
    assert workflow.median([5]) == 5 and workflow.p90([5]) == 5
    assert workflow.median([1, 3, 2, 10]) == 2.5
    ten = [float(x) for x in range(1, 11)]
    assert workflow.p90(ten) == 9  # ceil(0.9 * 10) = 9th value
    eleven = [*ten, 100.0]
    assert workflow.p90(eleven) == 10  # ceil(9.9) = 10th value
    t = workflow.summarise("ecg", "resting", "静息心电", [10, 20, 31, 45], 30)
    assert (t.count, t.median, t.p90, t.overdue, t.overdue_rate) == (4, 25.5, 45, 2, 0.5)


def _file(ts: Session, centre: str = "ecg", stype: str = "resting", minutes: int = 0) -> int:
    req = svc.create_request(
        ts,
        centre_code=centre,
        service_type=stype,
        requester_code=REQUESTER,
        actor="dr-a",
        patient_id_number=PID,
        patient_name="张三",
        at=T0 + timedelta(minutes=minutes),
    )
    return req.id


def test_request_lifecycle_and_tat_from_timelines(ts: Session, connected: str) -> None:
    # three ECGs reported 12, 25 and 50 minutes after filing (limit 30), one rejected, one left open
    with ts.begin():
        ids = [_file(ts, minutes=i) for i in range(5)]
        for rid, took in zip(ids[:3], (12, 25, 50), strict=True):
            filed = svc.get_request(ts, request_id=rid).requested_at
            svc.transition(ts, request_id=rid, to="accepted", actor="exp", at=filed + timedelta(minutes=2))
            svc.report(
                ts,
                request_id=rid,
                findings="窦性心律",
                conclusion="正常心电图",
                author="李专家",
                at=filed + timedelta(minutes=took),
            )
        svc.transition(
            ts,
            request_id=ids[3],
            to="rejected",
            actor="exp",
            reason="图像质量差",
            at=T0 + timedelta(minutes=10),
        )
    with ts.begin():
        req = svc.get_request(ts, request_id=ids[0])
        assert req.status == "completed" and req.notified_at is not None
        steps = [(h.from_status, h.to_status) for h in svc.get_history(ts, request_id=ids[0])]
        assert steps == [
            (None, "requested"),
            ("requested", "accepted"),
            ("accepted", "in_progress"),
            ("in_progress", "completed"),
        ]
        assert svc.get_request(ts, request_id=ids[3]).status_reason == "图像质量差"
        rows = svc.tat(ts, centre_code="ecg", since=T0, until=T0 + timedelta(days=1))
        resting = next(r for r in rows if r.service_type == "resting")
        # other tests may have completed ECGs in this window: check ours by their own durations
        mine = workflow.summarise("ecg", "resting", "静息心电", [12, 25, 50], 30)
        assert resting.count >= 3 and mine.median == 25 and mine.p90 == 50 and mine.overdue == 1
        # the open one is overdue 31 minutes after filing, not before
        from rhip import clock

        with clock.frozen(T0 + timedelta(minutes=4 + 29)):
            item = next(i for i in svc.worklist(ts, centre_code="ecg", limit=500) if i.request.id == ids[4])
            assert not item.overdue and item.due_at == T0 + timedelta(minutes=34)
        with clock.frozen(T0 + timedelta(minutes=4 + 31)):
            item = next(i for i in svc.worklist(ts, centre_code="ecg", limit=500) if i.request.id == ids[4])
            assert item.overdue


def test_illegal_moves_are_conflicts(ts: Session, connected: str) -> None:
    with ts.begin():
        rid = _file(ts)
        with pytest.raises(Conflict):
            svc.report(ts, request_id=rid, findings="x", conclusion="y", author="a")  # still requested
        svc.transition(ts, request_id=rid, to="cancelled", actor="dr-a", reason="患者离院")
        for target in ("accepted", "in_progress", "completed", "rejected", "cancelled"):
            with pytest.raises(Conflict):
                svc.transition(ts, request_id=rid, to=target, actor="x", reason="r")


def test_request_checks(ts: Session, connected: str) -> None:
    with ts.begin():
        with pytest.raises(Invalid, match="服务类型"):
            svc.create_request(
                ts,
                centre_code="ecg",
                service_type="CT",
                requester_code=REQUESTER,
                actor="a",
                patient_id_number=PID,
            )
        with pytest.raises(Invalid, match="注册库"):
            svc.create_request(
                ts,
                centre_code="ecg",
                service_type="resting",
                requester_code="H999",
                actor="a",
                patient_id_number=PID,
            )
        with pytest.raises(Conflict, match="尚未接入"):
            svc.create_request(
                ts,
                centre_code="ecg",
                service_type="resting",
                requester_code="C32011502",
                actor="a",
                patient_id_number=PID,
                at=T0,
            )
        with pytest.raises(Invalid, match="校验码"):
            svc.create_request(
                ts,
                centre_code="ecg",
                service_type="resting",
                requester_code=REQUESTER,
                actor="a",
                patient_id_number=PID[:-1] + "0",
                at=T0,
            )
        req = svc.get_request(ts, request_id=_file(ts, centre="imaging", stype="CT"))
        assert (
            req.performer_code == HUB_IMAGING
            and req.patient_sex == "1"
            and req.patient_birth_date == date(1980, 1, 1)
        )
        assert svc.may_work(HUB_IMAGING, req) and not svc.may_work(REQUESTER, req)
        with pytest.raises(Forbidden):
            svc.check_worker(REQUESTER, req)
        ts.rollback()


def test_coverage_is_derived_from_connections(ts: Session) -> None:
    with ts.begin():
        day = date(2030, 1, 1)
        # a fresh centre view: count only what this test adds by looking at the difference
        before = svc.coverage(ts, centre_code="pathology", on=day)
        c = svc.connect(ts, centre_code="pathology", institution_code="C32011801", connected_on=day)  # 高淳区
        svc.connect(
            ts,
            centre_code="pathology",
            site_name="高淳区测试诊所",
            district="高淳区",
            category="其他",
            connected_on=day,
        )
        svc.connect(ts, centre_code="pathology", institution_code="R02", connected_on=day)
        after = svc.coverage(ts, centre_code="pathology", on=day)
        assert after.total == before.total + 3
        assert after.by_category["社区"] == before.by_category["社区"] + 1
        assert after.by_category["对外帮扶"] == before.by_category["对外帮扶"] + 1
        assert "高淳区" in after.districts_covered and "高淳区" not in after.districts_not_covered
        assert set(after.districts_covered) | set(after.districts_not_covered) == {
            d for d in after.districts_covered + after.districts_not_covered
        }
        assert len(after.districts_covered) + len(after.districts_not_covered) == 12
        with pytest.raises(Conflict):
            svc.connect(ts, centre_code="pathology", institution_code="C32011801", connected_on=day)
        svc.disconnect(ts, connection_id=c.id, on=day + timedelta(days=1))
        later = svc.coverage(ts, centre_code="pathology", on=day + timedelta(days=1))
        assert later.by_category["社区"] == before.by_category["社区"]
        ts.rollback()
