"""Imaging on a real Orthanc: C-STORE then the change feed, STOW through rhip, previews through rhip,
malformed files and unknown institutions refused with clear errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Invalid
from rhip.telemed import imaging, pacs as pacs_mod, service as svc
from rhip.telemed.models import Series, Study
from tests.telemed.conftest import PID, REQUESTER

Auth = Callable[..., dict[str, str]]


def _study(institution: str = "江宁区东山社区卫生服务中心", n: int = 4, modality: str = "CT") -> list:  # type: ignore[type-arg]
    return imaging.make_study(
        institution=institution,
        modality=modality,
        instances=n,
        patient_id=PID,
        patient_name="王^五",
        sex="1",
        at=clock.now(),
    )


def _wait_stable(pacs: pacs_mod.Pacs, session: Session, uid: str, timeout: float = 20) -> Study:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session.begin():
            imaging.follow(session, pacs=pacs)
            study = session.scalar(select(Study).where(Study.study_uid == uid))
            if study is not None:
                session.expunge(study)
                return study
        time.sleep(0.5)
    raise AssertionError("study not recorded from the change feed")


def test_cstore_then_feed_records_study_and_opens_task(
    orthanc: pacs_mod.Pacs, ts: Session, connected: str
) -> None:
    ds = _study(n=4)
    assert orthanc.dicom_port
    stored = imaging.send_cstore(ds, host="127.0.0.1", port=orthanc.dicom_port, calling_aet=REQUESTER)
    assert stored == 4
    study = _wait_stable(orthanc, ts, str(ds[0].StudyInstanceUID))
    assert (study.modality, study.series_count, study.instance_count, study.institution_code) == (
        "CT",
        2,
        4,
        REQUESTER,
    )
    with ts.begin():
        req = svc.get_request(ts, request_id=study.request_id)
        assert req.centre_code == "imaging" and req.status == "requested" and req.source == "pacs"
        assert req.patient_id_number == PID and req.patient_name == "王五"
        series = list(ts.scalars(select(Series).where(Series.study_id == study.id)))
        assert sorted(s.instance_count for s in series) == [2, 2] and all(s.preview_instance for s in series)
        # a second pass records nothing twice
        again = imaging.follow(ts, pacs=orthanc)
        assert (
            again.recorded == []
            and len(list(ts.scalars(select(Study).where(Study.study_uid == study.study_uid)))) == 1
        )


def test_feed_reports_unknown_institution(orthanc: pacs_mod.Pacs, ts: Session) -> None:
    ds = _study(institution="火星第一医院", n=1)
    assert imaging.send_cstore(ds, host="127.0.0.1", port=orthanc.dicom_port or 0, calling_aet="MARS") == 1
    deadline = time.monotonic() + 20
    problems: list[tuple[str, str]] = []
    while time.monotonic() < deadline and not problems:
        time.sleep(0.5)
        with ts.begin():
            problems = imaging.follow(ts, pacs=orthanc).problems
    assert problems and "火星第一医院" in problems[0][1] and "注册库" in problems[0][1]


def _multipart(parts: list[bytes]) -> tuple[bytes, str]:
    b = "rhipboundary"
    body = b"".join(
        b"--" + b.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n" for p in parts
    )
    return body + b"--" + b.encode() + b"--\r\n", f'multipart/related; type="application/dicom"; boundary={b}'


def test_stow_through_rhip_and_preview(
    client: TestClient, auth: Auth, app_pacs: pacs_mod.Pacs, connected: str
) -> None:
    ds = _study(n=3, modality="MR")
    body, ctype = _multipart([imaging.to_bytes(d) for d in ds])
    r = client.post(
        "/api/v1/telemed/imaging/studies",
        content=body,
        headers={**auth("uploader", institution=REQUESTER), "Content-Type": ctype},
    )
    assert r.status_code == 201, r.text
    study = r.json()[0]
    assert study["instance_count"] == 3 and study["modality"] == "MR" and study["series_count"] == 1
    rid = study["request_id"]
    hub = auth("doctor", institution="H020")
    got = client.get(f"/api/v1/telemed/imaging/requests/{rid}/study", headers=hub)
    assert got.status_code == 200 and got.json()["series"][0]["instance_count"] == 3
    sid = got.json()["series"][0]["id"]
    png = client.get(f"/api/v1/telemed/imaging/series/{sid}/preview", headers=hub)
    assert (
        png.status_code == 200
        and png.headers["content-type"] == "image/png"
        and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    )
    assert (
        client.get(
            f"/api/v1/telemed/imaging/series/{sid}/preview", headers=auth("doctor", institution="H004")
        ).status_code
        == 403
    )
    # images are for the care team (staff see the study's counts, not its pictures); each view audited
    assert (
        client.get(f"/api/v1/telemed/imaging/series/{sid}/preview", headers=auth("manager")).status_code
        == 403
    )
    assert (
        client.get(f"/api/v1/telemed/imaging/requests/{rid}/study", headers=auth("manager")).status_code
        == 200
    )
    log = client.get("/api/v1/audit?action=telemed.image.read", headers=auth("admin")).json()
    assert any(e["target"] == f"ServiceRequest/{rid}" for e in log)


def test_stow_refuses_bad_files_and_institutions(
    client: TestClient, auth: Auth, app_pacs: pacs_mod.Pacs, connected: str, ts: Session
) -> None:
    up = auth("uploader", institution=REQUESTER)
    r = client.post(
        "/api/v1/telemed/imaging/studies",
        content=b"not a dicom file" * 20,
        headers={**up, "Content-Type": "application/dicom"},
    )
    assert r.status_code == 422 and r.json()["code"] == "bad-dicom" and "DICOM" in r.json()["detail"]
    good = imaging.to_bytes(_study(n=1)[0])
    body, ctype = _multipart([good, good[:200]])
    r = client.post("/api/v1/telemed/imaging/studies", content=body, headers={**up, "Content-Type": ctype})
    assert r.status_code == 422 and r.json()["detail"].startswith("第 2 个实例")
    other = imaging.to_bytes(_study(institution="南京市第一医院", n=1)[0])
    r = client.post(
        "/api/v1/telemed/imaging/studies", content=other, headers={**up, "Content-Type": "application/dicom"}
    )
    assert r.status_code == 422 and r.json()["code"] == "institution-mismatch"
    r = client.post(
        "/api/v1/telemed/imaging/studies",
        content=good,
        headers={**auth("uploader", institution="C32011502"), "Content-Type": "application/dicom"},
    )
    assert r.status_code == 422 and r.json()["code"] == "not-connected"
    r = client.post(
        "/api/v1/telemed/imaging/studies", content=good, headers={**up, "Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    with ts.begin():
        assert svc.is_connected(ts, centre_code="imaging", institution_code=REQUESTER, on=date.today())


def test_parse_requires_the_identifying_attributes() -> None:
    ds = _study(n=1)[0]
    del ds.SOPInstanceUID
    with pytest.raises(Invalid, match="SOPInstanceUID"):
        imaging.parse(imaging.to_bytes(ds))


def test_a_managed_orthanc_stopped_in_the_background_is_waited_for_by_the_next_start(tmp_path: Path) -> None:
    if not Path(pacs_mod.ORTHANC_BIN).exists():
        pytest.skip("Orthanc is not installed (scripts/bootstrap.sh --system)")
    with pacs_mod.managed(tmp_path, wait_stop=False) as first:
        assert first.alive()
    folder = (tmp_path / "orthanc").resolve()
    again = pacs_mod.orthanc_in(tmp_path / "orthanc")
    again.start()  # waits for the first one's shutdown: both would hold the same storage folder
    try:
        assert folder not in pacs_mod._STOPPING  # the wait was taken
        assert again.client().alive()
    finally:
        again.stop()
    assert again.process is not None and again.process.poll() is not None
