"""ECG records and slides attached to requests, lab specimen routing, events, and the Chinese pages."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rhip.errors import Conflict, Invalid
from rhip.telemed import ecg, service as svc, specimens
from tests.telemed.conftest import PID, REQUESTER

Auth = Callable[..., dict[str, str]]


def _png() -> bytes:
    raw = b"".join(b"\x00" + bytes([200, 120, 160]) * 4 for _ in range(4))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _file(client: TestClient, auth: Auth, centre: str, stype: str) -> int:
    r = client.post(
        "/api/v1/telemed/requests",
        json={"centre_code": centre, "service_type": stype, "patient_id_number": PID, "patient_name": "赵六"},
        headers=auth("doctor", institution=REQUESTER),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_ecg_record_round_trip_and_strip(
    client: TestClient, auth: Auth, connected: str, tmp_path: Path
) -> None:
    base = ecg.write_record(tmp_path, "ecg001", ecg.synth_signal(seconds=10, seed=1))
    signal, fs, leads = ecg.read_record(base)
    assert signal.shape == (5000, 12) and fs == 500 and leads == list(ecg.LEADS)
    assert abs(float(signal[:, 1].max()) - 1.2) < 0.2  # lead II's R waves about 1.2 mV
    rid = _file(client, auth, "ecg", "resting")
    files = {
        "header": ("ecg001.hea", (tmp_path / "ecg001.hea").read_bytes()),
        "signal": ("ecg001.dat", (tmp_path / "ecg001.dat").read_bytes()),
    }
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/ecg", files=files, headers=auth("doctor", institution=REQUESTER)
    )
    assert r.status_code == 201, r.text
    assert r.json()["meta"]["leads"] == list(ecg.LEADS) and r.json()["meta"]["seconds"] == 10
    svg = client.get(
        f"/api/v1/telemed/attachments/{r.json()['id']}", headers=auth("doctor", institution="H001")
    )
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.count("<polyline") == 13 and 'role="img"' in svg.text and ">aVR<" in svg.text
    # the tracing is clinical content: staff have no view of it, and every read by the care team is audited
    att = r.json()["id"]
    assert client.get(f"/api/v1/telemed/attachments/{att}", headers=auth("manager")).status_code == 403
    log = client.get("/api/v1/audit?action=telemed.ecg.read", headers=auth("admin"))
    assert log.status_code == 200 and any(e["target"] == f"ServiceRequest/{rid}" for e in log.json()), (
        log.text
    )
    page = client.get(f"/telemed/read/{rid}", headers=auth("doctor", institution="H001"))
    assert (
        page.status_code == 200
        and "心电图" in page.text
        and "<polyline" in page.text
        and "提交报告" not in page.text
    )  # not accepted yet
    bad = {"header": ("bad.hea", b"not a header\n"), "signal": ("bad.dat", b"\x00\x01")}
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/ecg", files=bad, headers=auth("doctor", institution=REQUESTER)
    )
    assert r.status_code == 422 and r.json()["code"] == "bad-wfdb"


def test_slides_and_events(client: TestClient, auth: Auth, connected: str) -> None:
    rid = _file(client, auth, "pathology", "histology")
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/slides",
        files={"image": ("slide-1.png", _png())},
        headers=auth("doctor", institution=REQUESTER),
    )
    assert r.status_code == 201 and r.json()["content_type"] == "image/png"
    img = client.get(
        f"/api/v1/telemed/attachments/{r.json()['id']}", headers=auth("doctor", institution="H021")
    )
    assert img.status_code == 200 and img.content == _png()
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/slides",
        files={"image": ("x.png", b"GIF89a....")},
        headers=auth("doctor", institution=REQUESTER),
    )
    assert r.status_code == 422 and r.json()["code"] == "bad-image"
    ev = {
        "kind": "meeting",
        "title": "疑难病例讨论",
        "held_at": "2022-08-20T14:00:00+08:00",
        "attendees": 20,
        "case_ids": [rid],
    }
    assert (
        client.post(
            "/api/v1/telemed/centres/pathology/events", json=ev, headers=auth("doctor", institution=REQUESTER)
        ).status_code
        == 403
    )
    r = client.post(
        "/api/v1/telemed/centres/pathology/events", json=ev, headers=auth("doctor", institution="H021")
    )
    assert r.status_code == 201, r.text
    assert any(
        e["title"] == "疑难病例讨论" for e in client.get("/api/v1/telemed/centres/pathology/events").json()
    )
    r = client.post(
        "/api/v1/telemed/centres/pathology/events", json={**ev, "kind": "party"}, headers=auth("manager")
    )
    assert r.status_code == 422


def test_specimen_states_follow_the_lab_request(ts: Session, connected: str) -> None:
    assert specimens.valid_barcode("LB" + "220810000001" + specimens.check_digit("220810000001"))
    with ts.begin():
        req = svc.create_request(
            ts,
            centre_code="lab",
            service_type="routine",
            requester_code=REQUESTER,
            actor="a",
            patient_id_number=PID,
        )
        sp = specimens.collect(ts, request_id=req.id, specimen_type="血清")
        assert specimens.valid_barcode(sp.barcode) and sp.to_code == svc.centre("lab").hub_code
        with pytest.raises(Conflict):
            specimens.move(ts, barcode=sp.barcode, to="tested", actor="lab")
        for state in ("shipped", "received", "tested", "reported"):
            specimens.move(ts, barcode=sp.barcode, to=state, actor="lab")
        assert svc.get_request(ts, request_id=req.id).status == "completed"
        with pytest.raises(Invalid, match="校验位"):
            specimens.get(ts, barcode=sp.barcode[:-1] + str((int(sp.barcode[-1]) + 1) % 10))
        other = svc.create_request(
            ts,
            centre_code="lab",
            service_type="routine",
            requester_code=REQUESTER,
            actor="a",
            patient_id_number=PID,
        )
        sp2 = specimens.collect(ts, request_id=other.id, specimen_type="全血")
        specimens.move(ts, barcode=sp2.barcode, to="shipped", actor="a")
        with pytest.raises(Invalid, match="原因"):
            specimens.move(ts, barcode=sp2.barcode, to="rejected", actor="lab")
        specimens.move(ts, barcode=sp2.barcode, to="rejected", actor="lab", reason="溶血")
        assert svc.get_request(ts, request_id=other.id).status == "rejected"


def test_pages_walk_the_workflow(client: TestClient, auth: Auth, connected: str) -> None:
    mgr = auth("manager")
    home = client.get("/telemed?month=2022-08", headers=mgr)
    assert (
        home.status_code == 200 and "远程医疗五大中心" in home.text and "南京市远程影像诊断中心" in home.text
    )
    dash = client.get("/telemed/centres/ecg?month=2022-08", headers=mgr)
    assert (
        dash.status_code == 200
        and 'role="img"' in dash.text
        and "报告时限" in dash.text
        and "<script" not in dash.text.split("</head>")[1]
    )
    doc = auth("doctor", institution=REQUESTER)
    r = client.post(
        "/telemed/requests",
        data={
            "centre_service": "imaging/CT",
            "patient_id_number": PID,
            "patient_name": "钱七",
            "reason": "胸痛",
        },
        headers=doc,
        follow_redirects=False,
    )
    assert r.status_code == 303 and "已提交申请" in unquote(r.headers["location"])
    mine = client.get("/telemed/requests", headers=doc)
    assert mine.status_code == 200 and "钱七" in mine.text
    rid = int(mine.text.split('<a href="/telemed/read/')[1].split('"')[0])
    hub = auth("doctor", institution="H020")
    wl = client.get("/telemed/centres/imaging/worklist", headers=hub)
    assert wl.status_code == 200 and f"/telemed/read/{rid}" in wl.text
    assert client.get("/telemed/centres/imaging/worklist", headers=doc).status_code == 403
    page = client.get(f"/telemed/read/{rid}", headers=hub)
    assert page.status_code == 200 and "接收" in page.text
    client.post(f"/telemed/read/{rid}/transition", data={"status": "accepted"}, headers=hub)
    page = client.get(f"/telemed/read/{rid}", headers=hub)
    assert "提交报告" in page.text
    r = client.post(
        f"/telemed/read/{rid}/report",
        data={"findings": "左肺上叶小结节", "conclusion": "建议三个月复查"},
        headers=hub,
        follow_redirects=False,
    )
    assert r.status_code == 303
    done = client.get(f"/telemed/read/{rid}", headers=doc)
    assert "建议三个月复查" in done.text and "已报告" in done.text
    bad = client.post(
        "/telemed/requests",
        data={"centre_service": "imaging/CT", "patient_id_number": "123"},
        headers=doc,
        follow_redirects=False,
    )
    assert bad.status_code == 303 and "msg=" in bad.headers["location"]
    assert client.get(f"/telemed/read/{rid}", headers=auth("doctor", institution="H004")).status_code == 403
