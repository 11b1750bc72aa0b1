"""A 12-lead ECG as a DICOM 12-Lead ECG Waveform object: built from a WFDB record, stored in the real Orthanc,
read back from it into the same signal and drawn as the strip; anything else is refused clearly."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rhip import clock
from rhip.errors import Invalid
from rhip.telemed import ecg, ecg_dicom, imaging

AT = datetime(2022, 8, 10, 9, 30, tzinfo=clock.SHANGHAI)


def test_wfdb_record_to_orthanc_and_back(orthanc: Any, tmp_path: Path) -> None:
    base = ecg.write_record(tmp_path, "ecg-dcm", ecg.synth_signal(seconds=10, seed=3))
    signal, fs, leads = ecg.read_record(base)
    ds = ecg_dicom.to_dicom(
        signal,
        fs,
        leads,
        patient_id="P-000321",
        patient_name="赵六",
        institution="江宁区东山社区卫生服务中心",
        at=AT,
    )
    assert orthanc.stow([ecg_dicom.to_bytes(ds)]) == 1
    oid = imaging.orthanc_id(ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    tags = orthanc.instance_tags(oid)
    assert tags is not None and tags["SOPClassUID"] == ecg_dicom.TWELVE_LEAD_ECG and tags["Modality"] == "ECG"
    stored = orthanc.instance_file(oid)
    assert stored is not None
    back, fs2, leads2 = ecg_dicom.from_dicom(stored)
    assert (fs2, leads2, back.shape) == (fs, leads, signal.shape)
    assert float(np.abs(back - signal).max()) <= 0.0005  # one count is a microvolt
    svg = ecg.strip_svg_of(back, fs2, leads2, key="d1", name="ecg-dcm")
    assert svg.count("<polyline") == 13 and ">aVF<" in svg


def test_what_is_not_a_twelve_lead_ecg_is_refused(tmp_path: Path) -> None:
    signal = ecg.synth_signal(seconds=2, seed=1)
    with pytest.raises(Invalid) as err:
        ecg_dicom.to_dicom(
            signal,
            500,
            [*ecg.LEADS[:11], "X"],
            patient_id="p",
            patient_name="n",
            institution="i",
            at=AT,
        )
    assert err.value.code == "bad-ecg"
    ct = imaging.make_study(
        institution="i", modality="CT", instances=1, patient_id="p", patient_name="n", sex="1", at=AT
    )[0]
    with pytest.raises(Invalid) as err:
        ecg_dicom.from_dicom(imaging.to_bytes(ct))
    assert err.value.code == "not-ecg-waveform" and "12 导联" in err.value.detail
    with pytest.raises(Invalid) as err:
        ecg_dicom.from_dicom(b"DICM" * 40)
    assert err.value.code == "not-dicom"


def test_uploaded_ecg_is_archived_as_dicom_and_drawn_from_it(
    client: Any, auth: Any, app_pacs: Any, connected: str, ts: Any, tmp_path: Path
) -> None:
    from sqlalchemy import func, select

    from rhip.telemed.models import Attachment, Study
    from tests.telemed.conftest import PID, REQUESTER

    doc = auth("doctor", institution=REQUESTER)
    r = client.post(
        "/api/v1/telemed/requests",
        json={
            "centre_code": "ecg",
            "service_type": "resting",
            "patient_id_number": PID,
            "patient_name": "张三",
        },
        headers=doc,
    )
    rid = r.json()["id"]
    base = ecg.write_record(tmp_path, "ecg-api", ecg.synth_signal(seconds=10, seed=4))
    files = {
        "header": ("ecg-api.hea", base.with_suffix(".hea").read_bytes()),
        "signal": ("ecg-api.dat", base.with_suffix(".dat").read_bytes()),
    }
    r = client.post(f"/api/v1/telemed/requests/{rid}/ecg", files=files, headers=doc)
    assert r.status_code == 201, r.text
    oid = r.json()["meta"]["dicom"]["orthanc_id"]
    tags = app_pacs.instance_tags(oid)
    assert tags is not None and tags["SOPClassUID"] == ecg_dicom.TWELVE_LEAD_ECG
    # the strip now comes from the PACS: it is drawn even with the WFDB files gone
    with ts.begin():
        path = Path(ts.get(Attachment, r.json()["id"]).path)
    for ext in (".hea", ".dat"):
        path.with_suffix(ext).unlink()
    svg = client.get(
        f"/api/v1/telemed/attachments/{r.json()['id']}", headers=auth("doctor", institution="H001")
    )
    assert svg.status_code == 200 and svg.text.count("<polyline") == 13
    # the change feed does not take the ECG object for an imaging study
    with ts.begin():
        res = imaging.follow(ts, pacs=app_pacs)
        assert not [
            p for p in res.problems if p[0] == imaging.orthanc_id(tags["PatientID"], tags["StudyInstanceUID"])
        ]
        uid = tags["StudyInstanceUID"]
        assert ts.scalar(select(func.count()).where(Study.study_uid == uid)) == 0
