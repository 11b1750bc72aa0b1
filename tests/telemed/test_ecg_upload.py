"""A DICOM ECG uploaded straight to the ECG centre, as a hospital's ECG cart sends it: checked against the
request and the centre's rules, stored in the real Orthanc unchanged, drawn from there; every refusal
precise, and nothing half-stored when the PACS refuses or is down."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.telemed import ecg, ecg_dicom, ecg_upload, imaging, pacs as pacs_mod
from rhip.telemed.models import Attachment, History, Request
from tests.telemed.conftest import PID, REQUESTER

Auth = Callable[..., dict[str, str]]
GENERAL_ECG = "1.2.840.10008.5.1.4.1.1.9.1.2"
HUB = "H001"  # 江苏省人民医院, the ECG centre's hub
AT = datetime(2022, 8, 10, 9, 30, tzinfo=clock.SHANGHAI)
# SCP-ECG lead codes, as older carts send them (MDC numbers them alike)
SCPECG = {"I": "1", "II": "2", "V1": "3", "V2": "4", "V3": "5", "V4": "6", "V5": "7", "V6": "8"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def cart_ecg(
    *,
    patient_id: str = PID,
    sex: str = "M",
    sop_class: str = GENERAL_ECG,
    leads: tuple[str, ...] = tuple(SCPECG),
    unit: str = "mV",
    fs: float = 500.0,
    seconds: float = 10.0,
    groups: bool = True,
    codes: dict[str, str] = SCPECG,
    institution: str = "江宁区东山社区卫生服务中心",
    modality: str = "ECG",
) -> tuple[bytes, np.ndarray]:
    """A cart's General ECG object written with pydicom alone: a 1.2 s MEDIAN group before the RHYTHM group,
    eight recorded leads coded in SCP-ECG, 5 µV a count in the stated unit. (file, rhythm signal in mV)"""
    full = ecg.synth_signal(seconds=seconds, fs=round(fs), seed=11)
    signal = full[:, [ecg.LEADS.index(lead) for lead in leads]]
    per_count = {"mV": 0.005, "uV": 5.0, "mmHg": 0.005, "V": 0.005}[unit]  # "V": a cart's mislabel
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID, ds.PatientName, ds.PatientSex, ds.PatientBirthDate = patient_id, "张三", sex, "19800101"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.InstitutionName, ds.Manufacturer = modality, institution, "Cart"
    ds.StudyDate, ds.StudyTime = "20220810", "093000"

    def group(label: str, values: np.ndarray) -> Dataset:
        g = Dataset()
        g.MultiplexGroupLabel = label
        g.WaveformOriginality = "ORIGINAL" if label == "RHYTHM" else "DERIVED"
        g.NumberOfWaveformChannels, g.NumberOfWaveformSamples = values.shape[1], values.shape[0]
        g.SamplingFrequency = f"{fs:g}"
        g.WaveformBitsAllocated, g.WaveformSampleInterpretation = 16, "SS"
        channels = []
        for lead in leads:
            ch, src, units = Dataset(), Dataset(), Dataset()
            src.CodeValue = f"5.6.3-9-{codes[lead]}" if codes is SCPECG else codes[lead]
            src.CodingSchemeDesignator = "SCPECG"
            src.CodeMeaning = f"Lead {lead}" if codes is SCPECG else "Pressure"
            units.CodeValue, units.CodingSchemeDesignator, units.CodeMeaning = unit, "UCUM", unit
            ch.ChannelSourceSequence, ch.ChannelSensitivityUnitsSequence = [src], [units]
            ch.ChannelSensitivity, ch.ChannelSensitivityCorrectionFactor = f"{per_count:g}", "1"
            ch.ChannelBaseline, ch.WaveformBitsStored = "0", 16
            channels.append(ch)
        g.ChannelDefinitionSequence = channels
        g.WaveformData = np.rint(values / 0.005).astype("<i2").tobytes()
        return g

    median = signal[: int(1.2 * fs)]
    ds.WaveformSequence = ([group("MEDIAN", median)] if groups else []) + [group("RHYTHM", signal)]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue(), signal


@pytest.fixture()
def ecg_request(client: TestClient, auth: Auth, connected: str) -> int:
    """An ECG request of REQUESTER for the patient PID (male, born 1980-01-01)."""
    r = client.post(
        "/api/v1/telemed/requests",
        json={
            "centre_code": "ecg",
            "service_type": "resting",
            "patient_id_number": PID,
            "patient_name": "张三",
            "patient_sex": "1",
        },
        headers=auth("doctor", institution=REQUESTER),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture()
def max_bytes(app_: Any) -> Iterator[Any]:
    """The app's settings, the ECG size limit restored after the test."""
    settings = app_.state.settings
    before = settings.ecg_max_bytes
    yield settings
    settings.ecg_max_bytes = before


def _state(ts: Session, rid: int) -> tuple[str, int, int]:
    """(status, attachments, history lines) of a request."""
    with ts.begin():
        req = ts.get(Request, rid)
        assert req is not None
        ts.refresh(req)
        return (
            req.status,
            ts.scalar(select(func.count()).where(Attachment.request_id == rid)) or 0,
            ts.scalar(select(func.count()).where(History.request_id == rid)) or 0,
        )


def _in_pacs(pacs: pacs_mod.Pacs, data: bytes) -> bool:
    """Whether the PACS holds this file's instance (by the Orthanc id of its UIDs)."""
    from pydicom import dcmread

    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
        uids = (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    except Exception:  # not DICOM: nothing the PACS could hold
        return False
    return pacs.instance_file(imaging.orthanc_id(*map(str, uids))) is not None


def _stow(*parts: bytes, boundary: str = "cart-boundary") -> tuple[bytes, str]:
    """A STOW-RS body of these instances and its content type."""
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n" for p in parts
    )
    return (
        body + f"--{boundary}--\r\n".encode(),
        f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


def _upload(
    client: TestClient, headers: dict[str, str], rid: int, data: bytes, name: str = "cart.dcm"
) -> Any:
    return client.post(f"/api/v1/telemed/requests/{rid}/ecg", files={"dicom": (name, data)}, headers=headers)


def test_cart_ecg_is_stored_unchanged_and_drawn_from_the_pacs(
    client: TestClient, auth: Auth, app_pacs: pacs_mod.Pacs, ecg_request: int, ts: Session
) -> None:
    data, signal = cart_ecg()
    before = _state(ts, ecg_request)
    r = _upload(client, auth("doctor", institution=REQUESTER), ecg_request, data, "ECG_0810-1.dcm")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["content_type"] == "application/dicom" and body["name"] == "ECG_0810-1"
    meta = body["meta"]
    assert meta["leads"] == list(ecg.LEADS) and meta["derived"] == ["III", "aVR", "aVL", "aVF"]
    assert (meta["fs"], meta["seconds"], meta["sop_class"]) == (500, 10.0, GENERAL_ECG)
    # Orthanc holds the very bytes the cart sent
    assert app_pacs.instance_file(meta["dicom"]["orthanc_id"]) == data
    # the RHYTHM group was read (not the MEDIAN beats), 5 µV a count; III = II − I (Einthoven)
    back, fs, leads = ecg_dicom.from_dicom(data)
    assert back.shape == (5000, 12) and fs == 500
    assert float(np.abs(back[:, leads.index("V4")] - signal[:, 5]).max()) <= 0.0026
    assert np.allclose(back[:, leads.index("III")], back[:, 1] - back[:, 0])
    # the request did not move: only the attachment was added
    assert _state(ts, ecg_request) == (before[0], before[1] + 1, before[2])
    svg = client.get(f"/api/v1/telemed/attachments/{body['id']}", headers=auth("doctor", institution=HUB))
    assert svg.status_code == 200 and svg.text.count("<polyline") == 13 and ">aVL<" in svg.text
    page = client.get(f"/telemed/read/{ecg_request}", headers=auth("doctor", institution=HUB))
    assert page.status_code == 200 and "<polyline" in page.text and "暂不能显示" not in page.text
    # the same object again is a conflict, and the PACS is not asked twice to keep it
    again = _upload(client, auth("doctor", institution=REQUESTER), ecg_request, data)
    assert again.status_code == 409 and again.json()["code"] == "ecg-duplicate"


def test_bodies_application_dicom_and_stow_rs(
    client: TestClient, auth: Auth, app_pacs: pacs_mod.Pacs, ecg_request: int, ts: Session, tmp_path: Any
) -> None:
    # the cart's own uploader key, an application/dicom body made by our WFDB → DICOM writer
    base = ecg.write_record(tmp_path, "wf", ecg.synth_signal(seconds=10, seed=8))
    sig, fs, leads = ecg.read_record(base)
    ds = ecg_dicom.to_dicom(
        sig, fs, leads, patient_id=PID, patient_name="张三", institution="江宁区东山社区卫生服务中心", at=AT
    )
    up = auth("uploader", institution=REQUESTER)
    url = f"/api/v1/telemed/requests/{ecg_request}/ecg"
    r = client.post(url, content=ecg_dicom.to_bytes(ds), headers={**up, "Content-Type": "application/dicom"})
    assert r.status_code == 201, r.text
    assert r.json()["meta"]["sop_class"] == ecg_dicom.TWELVE_LEAD_ECG and r.json()["meta"]["derived"] == []
    # STOW-RS: one instance in multipart/related
    part, _ = cart_ecg()
    stow, ctype = _stow(part)
    r = client.post(url, content=stow, headers={**up, "Content-Type": ctype})
    assert r.status_code == 201, r.text
    assert app_pacs.instance_file(r.json()["meta"]["dicom"]["orthanc_id"]) == part
    two, ctype = _stow(cart_ecg()[0], cart_ecg()[0])
    r = client.post(url, content=two, headers={**up, "Content-Type": ctype})
    assert r.status_code == 422 and r.json()["code"] == "one-instance"
    r = client.post(url, content=b"hello", headers={**up, "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = client.post(url, files={"note": ("a.txt", b"x")}, headers=up)
    assert r.status_code == 422 and r.json()["code"] == "ecg-file-required"
    assert _state(ts, ecg_request)[1] == 2


def _no_leads() -> bytes:
    data, _ = cart_ecg()
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(data))
    ds.WaveformSequence = []
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


REFUSALS: list[tuple[str, Callable[[], bytes], int, str]] = [
    ("not DICOM", lambda: b"ECG,I,II\n" * 40, 422, "not-dicom"),
    (
        "an image",
        lambda: imaging.to_bytes(
            imaging.make_study(
                institution="i", modality="CT", instances=1, patient_id=PID, patient_name="n", sex="1", at=AT
            )[0]
        ),
        422,
        "not-ecg-waveform",
    ),
    ("not an ECG modality", lambda: cart_ecg(modality="OT")[0], 422, "bad-waveform"),
    ("no waveform", _no_leads, 422, "no-leads"),
    (
        "channels naming no lead",
        lambda: cart_ecg(codes={lead: f"9:{k}" for k, lead in enumerate(SCPECG)})[0],
        422,
        "no-leads",
    ),
    (
        "V5 and V6 missing",
        lambda: cart_ecg(leads=("I", "II", "V1", "V2", "V3", "V4"))[0],
        422,
        "missing-leads",
    ),
    ("another patient", lambda: cart_ecg(patient_id="320102198001011254")[0], 422, "wrong-patient"),
    ("the patient's sex differs", lambda: cart_ecg(sex="F")[0], 422, "wrong-patient"),
    ("pressure, not voltage", lambda: cart_ecg(unit="mmHg")[0], 422, "bad-units"),
    ("microvolts", lambda: cart_ecg(unit="uV")[0], 201, ""),
    ("millivolts labelled as volts", lambda: cart_ecg(unit="V")[0], 422, "bad-units"),
    ("a rate below the IOD's", lambda: cart_ecg(fs=100.0)[0], 422, "bad-sampling"),
    ("one second", lambda: cart_ecg(seconds=1.0, groups=False)[0], 422, "bad-sampling"),
    ("another hospital's cart", lambda: cart_ecg(institution="南京鼓楼医院")[0], 422, "institution-mismatch"),
]


@pytest.mark.parametrize(("case", "make", "status", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_are_precise_and_store_nothing(
    client: TestClient,
    auth: Auth,
    app_pacs: pacs_mod.Pacs,
    ecg_request: int,
    ts: Session,
    case: str,
    make: Callable[[], bytes],
    status: int,
    code: str,
) -> None:
    data = make()
    r = _upload(client, auth("doctor", institution=REQUESTER), ecg_request, data)
    assert r.status_code == status, r.text
    if status == 201:  # 5 µV counts stated in µV are still a sane ECG
        assert r.json()["meta"]["leads"] == list(ecg.LEADS)
        return
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == code and CJK.search(problem["detail"]), problem
    assert _state(ts, ecg_request)[1] == 0
    assert not _in_pacs(app_pacs, data)


def test_oversized_and_wrong_request(
    client: TestClient, auth: Auth, app_pacs: pacs_mod.Pacs, ecg_request: int, max_bytes: Any, ts: Session
) -> None:
    data, _ = cart_ecg()
    max_bytes.ecg_max_bytes = len(data) - 1
    doc = auth("doctor", institution=REQUESTER)
    r = _upload(client, doc, ecg_request, data)
    assert r.status_code == 413 and r.json()["code"] == "too-large" and "KB" in r.json()["detail"]
    url = f"/api/v1/telemed/requests/{ecg_request}/ecg"
    r = client.post(url, content=data, headers={**doc, "Content-Type": "application/dicom"})
    assert r.status_code == 413
    max_bytes.ecg_max_bytes = 8 * 1024**2
    path = client.post(
        "/api/v1/telemed/requests",
        json={"centre_code": "pathology", "service_type": "histology", "patient_id_number": PID},
        headers=doc,
    ).json()["id"]
    r = _upload(client, doc, path, data)
    assert r.status_code == 422 and r.json()["code"] == "not-ecg"
    assert _state(ts, ecg_request)[1] == 0


def test_roles(client: TestClient, auth: Auth, app_pacs: pacs_mod.Pacs, ecg_request: int) -> None:
    data, _ = cart_ecg()
    assert _upload(client, {}, ecg_request, data).status_code == 401
    for role, inst in (("manager", None), ("admin", None), ("resident", None), ("agent", None)):
        assert _upload(client, auth(role, institution=inst), ecg_request, data).status_code == 403, role
    for role in ("doctor", "uploader"):  # neither side of the request
        r = _upload(client, auth(role, institution="H004"), ecg_request, data)
        assert r.status_code == 403 and r.json()["code"] == "not-care-team"
    r = _upload(client, auth("uploader", institution=REQUESTER), ecg_request, data)
    assert r.status_code == 201, r.text


def test_pacs_down_or_refusing_leaves_the_request_as_it_was(
    client: TestClient, auth: Auth, app_pacs: pacs_mod.Pacs, ecg_request: int, ts: Session, app_: Any
) -> None:
    settings = app_.state.settings
    doc = auth("doctor", institution=REQUESTER)
    data, _ = cart_ecg()
    before = _state(ts, ecg_request)
    dead = f"http://127.0.0.1:{pacs_mod.free_port()}"
    for url, says in ((dead, "无响应"), (app_pacs.url + "/no-such-root", "拒绝")):
        settings.orthanc_url = url
        r = _upload(client, doc, ecg_request, data)
        assert r.status_code == 503 and r.json()["code"] == "pacs-unavailable", r.text
        assert "Orthanc" in r.json()["detail"] and url in r.json()["detail"] and says in r.json()["detail"]
        assert _state(ts, ecg_request) == before
    # stored while the PACS ran, then the PACS goes: the reading page opens and says why there is no strip
    settings.orthanc_url = app_pacs.url
    r = _upload(client, doc, ecg_request, data)
    assert r.status_code == 201, r.text
    settings.orthanc_url = dead
    hub = auth("doctor", institution=HUB)
    assert client.get(f"/api/v1/telemed/attachments/{r.json()['id']}", headers=hub).status_code == 503
    page = client.get(f"/telemed/read/{ecg_request}", headers=hub)
    assert page.status_code == 200 and "暂不能显示" in page.text and "<polyline" not in page.text
    settings.orthanc_url = app_pacs.url


def test_a_failed_record_takes_the_instance_out_of_the_pacs(orthanc: pacs_mod.Pacs) -> None:
    data, _ = cart_ecg()
    with pytest.raises(RuntimeError), ecg_upload.kept_in(orthanc, data) as stored:
        assert stored.fresh and orthanc.instance_file(stored.orthanc_id) == data
        raise RuntimeError("the commit failed")
    assert orthanc.instance_file(stored.orthanc_id) is None
    # an instance the PACS already held before is left where it was
    kept = orthanc.store(data)["ID"]
    with pytest.raises(RuntimeError), ecg_upload.kept_in(orthanc, data) as again:
        assert not again.fresh
        raise RuntimeError("the commit failed")
    assert orthanc.instance_file(kept) == data
    with pytest.raises(pacs_mod.PacsUnavailable), ecg_upload.kept_in(None, data):
        pass


def test_imaging_stow_sends_an_ecg_to_the_ecg_centre(
    client: TestClient, auth: Auth, app_pacs: pacs_mod.Pacs, connected: str
) -> None:
    data, _ = cart_ecg()
    r = client.post(
        "/api/v1/telemed/imaging/studies",
        content=data,
        headers={**auth("uploader", institution=REQUESTER), "Content-Type": "application/dicom"},
    )
    assert r.status_code == 422 and r.json()["code"] == "not-imaging" and "心电申请" in r.json()["detail"]
