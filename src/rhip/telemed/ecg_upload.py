"""ECGs that arrive as DICOM: a hospital's ECG cart sends its waveform object (12-lead or General ECG) for an
ECG request. It is checked against the request (an ECG request, the patient it names, the institution that
took it) and the centre's rules (data/ecg.yaml, through ecg_dicom.read), stored in the PACS unchanged, and
recorded as the request's attachment only once the PACS holds it; when the record cannot be written after
all, what this upload stored is taken out of the PACS again (`kept_in`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Conflict, Invalid, TooLarge
from rhip.registry import data as reg
from rhip.telemed import ecg_dicom
from rhip.telemed.ecg_dicom import DICOM_TYPE, Waveform
from rhip.telemed.models import Attachment, Request
from rhip.telemed.pacs import Pacs, PacsUnavailable

log = logging.getLogger(__name__)
SEX = {"M": "1", "F": "2"}  # DICOM PatientSex → GB/T 2261.1


def size_text(n: int) -> str:
    """A byte count for people (MB or KB)."""
    return f"{n / 1024**2:g} MB" if n >= 1024**2 else f"{n / 1024:g} KB"


def check_size(size: int, max_bytes: int) -> None:
    """TooLarge (413) when an ECG upload is over the configured limit (RHIP_ECG_MAX_BYTES)."""
    if size > max_bytes:
        raise TooLarge(f"心电文件不能超过 {size_text(max_bytes)}", code="too-large")


def _same_patient(wave: Waveform, req: Request) -> None:
    tags = wave.tags
    ids = {tags["PatientID"].upper(), *(x.upper() for x in tags["OtherPatientIDs"].split("\\"))} - {""}
    if not ids:
        raise Invalid("心电图对象没有患者标识（PatientID），无法与申请核对", code="no-patient-id")
    expected = {x.strip().upper() for x in (req.patient_id_number, req.patient_local_id) if x}
    if not ids & expected:
        raise Invalid(f"心电图对象的患者标识（PatientID）与申请 {req.id} 的患者不符", code="wrong-patient")
    birth = tags["PatientBirthDate"]
    if birth and req.patient_birth_date and birth[:8] != req.patient_birth_date.strftime("%Y%m%d"):
        raise Invalid(f"心电图对象的出生日期与申请 {req.id} 的患者不符", code="wrong-patient")
    sex = SEX.get(tags["PatientSex"].upper())
    if sex and req.patient_sex in ("1", "2") and sex != req.patient_sex:
        raise Invalid(f"心电图对象的性别与申请 {req.id} 的患者不符", code="wrong-patient")


def _same_institution(wave: Waveform, req: Request) -> None:
    """A cart's InstitutionName that names another registered institution is refused; a name the registry
    does not know (a department, a cart's own label) is left alone."""
    named = wave.tags["InstitutionName"]
    other = reg.resolve_name(named) if named else None
    if other is not None and other.code != req.requester_code:
        raise Invalid(
            f"心电图对象的机构名称“{named}”不是申请机构（{req.requester_code}）",
            code="institution-mismatch",
        )


def check(session: Session, *, req: Request, data: bytes, max_bytes: int) -> Waveform:
    """An uploaded DICOM ECG, checked for this request: size, an ECG request, the waveform rules, the
    leads the service type needs, the patient and institution; Conflict when the request already has it."""
    check_size(len(data), max_bytes)
    if req.centre_code != "ecg":
        raise Invalid("只有心电申请可以附加心电记录", code="not-ecg")
    wave = ecg_dicom.read(data)
    rules = ecg_dicom.ecg_rules()["required_leads"]
    needed = rules.get(req.service_type, rules["resting"])
    missing = [lead for lead in needed if lead not in wave.leads]
    if missing:
        raise Invalid(
            f"心电图对象缺少 {req.service_type} 所需的导联：{'、'.join(missing)}"
            f"（现有 {'、'.join(wave.leads)}）",
            code="missing-leads",
        )
    _same_patient(wave, req)
    _same_institution(wave, req)
    held = session.scalars(
        select(Attachment.meta).where(Attachment.request_id == req.id, Attachment.kind == "ecg")
    )
    if any(((m or {}).get("dicom") or {}).get("sop_instance_uid") == wave.sop_instance_uid for m in held):
        raise Conflict(f"申请 {req.id} 已有该心电图对象", code="ecg-duplicate")
    return wave


@dataclass
class Stored:
    """What the PACS answered for one stored instance."""

    orthanc_id: str
    fresh: bool  # stored by this call (not already held)


@contextmanager
def kept_in(pacs: Pacs | None, data: bytes) -> Iterator[Stored]:
    """Store the file in the PACS as it is, for the block that records it; when the block fails, the
    instance this call stored is removed again, so nothing is left half-stored. 503 without a PACS."""
    if pacs is None:
        raise PacsUnavailable(
            "影像归档系统（Orthanc）未启动，DICOM 心电图无处保存："
            "请用 rhip serve 启动，或设置 RHIP_ORTHANC_URL"
        )
    answer = pacs.store(data)
    stored = Stored(orthanc_id=str(answer["ID"]), fresh=answer.get("Status") != "AlreadyStored")
    try:
        yield stored
    except BaseException:
        if stored.fresh and not pacs.delete_instance(stored.orthanc_id):
            log.warning("ECG instance left in the PACS after a failed record: %s", stored.orthanc_id)
        raise


def _name(filename: str | None, wave: Waveform) -> str:
    stem = (filename or "").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if stem and len(stem) <= 100 and all(ch.isalnum() or ch in "_-" for ch in stem):
        return stem
    return "ecg-" + wave.sop_instance_uid[-24:].replace(".", "-")


def record(
    session: Session,
    *,
    req: Request,
    wave: Waveform,
    stored: Stored,
    filename: str | None,
    size: int,
    at: datetime | None = None,
) -> Attachment:
    """The request's attachment for a DICOM ECG the PACS holds (its strip is read back from there)."""
    att = Attachment(
        request_id=req.id,
        kind="ecg",
        name=_name(filename, wave),
        content_type=DICOM_TYPE,
        path=f"orthanc:{stored.orthanc_id}",
        size=size,
        meta={
            "fs": wave.fs,
            "leads": wave.leads,
            "seconds": wave.seconds,
            "derived": wave.derived,
            "sop_class": wave.sop_class,
            "dicom": {"orthanc_id": stored.orthanc_id, "sop_instance_uid": wave.sop_instance_uid},
        },
        created_at=at or clock.now(),
    )
    session.add(att)
    session.flush()
    return att


def attach(
    session: Session,
    *,
    pacs: Pacs | None,
    req: Request,
    data: bytes,
    filename: str | None,
    max_bytes: int,
    at: datetime | None = None,
) -> Attachment:
    """Check, store and record a DICOM ECG within the caller's transaction (the demo's path; the API's route
    also undoes the store when its commit fails)."""
    wave = check(session, req=req, data=data, max_bytes=max_bytes)
    with kept_in(pacs, data) as stored:
        return record(session, req=req, wave=wave, stored=stored, filename=filename, size=len(data), at=at)
