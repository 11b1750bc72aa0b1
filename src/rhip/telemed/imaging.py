# ruff: noqa: E501
"""Imaging on the PACS: small valid DICOM studies for the synthetic city (pydicom), sending by C-STORE
(pynetdicom), checking an upload before it reaches Orthanc, and following Orthanc's change feed to record
each study (ImagingStudy: modality, series, instances) and open its reading task."""

from __future__ import annotations

import hashlib
import io
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Invalid
from rhip.registry import data as reg
from rhip.registry.idnumber import validate_id
from rhip.telemed import service as svc
from rhip.telemed.models import FeedState, Series, Study
from rhip.telemed.pacs import AET, Pacs

log = logging.getLogger(__name__)
SOP_CLASSES: dict[str, UID] = {
    "CT": CTImageStorage,
    "MR": UID("1.2.840.10008.5.1.4.1.1.4"),
    "DX": UID("1.2.840.10008.5.1.4.1.1.1.1"),
    "US": UID("1.2.840.10008.5.1.4.1.1.6.1"),
}
HEADER_TAGS = [
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "StudyTime",
    "Modality",
    "InstitutionName",
    "StudyDescription",
    "SeriesDescription",
    "PatientName",
    "PatientID",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
]  # fmt: skip  (the only tags rhip records: reading just these keeps an upload's check cheap)
WAVEFORM_ROOT = (
    "1.2.840.10008.5.1.4.1.1.9."  # every waveform storage SOP class (ECG, hemodynamic, audio, ...)
)
REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Modality")


def make_instance(
    *,
    study_uid: str,
    series_uid: str,
    number: int,
    series_number: int,
    modality: str,
    institution: str,
    patient_id: str,
    patient_name: str,
    sex: str,
    at: datetime,
    size: int = 32,
) -> Dataset:
    """One small valid image instance (size × size, 16-bit monochrome, a gradient with a bright disc)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASSES.get(modality, CTImageStorage)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    local = at.astimezone(clock.SHANGHAI)
    ds.StudyDate = ds.SeriesDate = local.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = local.strftime("%H%M%S")
    ds.Modality = modality
    ds.InstitutionName = institution
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientSex = {"1": "M", "2": "F"}.get(sex, "O")
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = number
    ds.AccessionNumber = study_uid[-16:]
    ds.StudyDescription = f"{modality} 远程影像"
    ds.SeriesDescription = f"序列 {series_number}"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    yy, xx = np.mgrid[0:size, 0:size]
    img = (xx * 40 + yy * 20).astype(np.uint16)
    img[(xx - size // 2) ** 2 + (yy - size // 2) ** 2 < (size // 4 + number % 4) ** 2] = 3000
    ds.PixelData = img.tobytes()
    return ds


def make_study(
    *,
    institution: str,
    modality: str,
    instances: int,
    patient_id: str,
    patient_name: str,
    sex: str,
    at: datetime,
) -> list[Dataset]:
    """A study of `instances` images in one or two series."""
    study_uid = generate_uid()
    n_series = 2 if instances >= 4 else 1
    series_uids = [generate_uid() for _ in range(n_series)]
    return [
        make_instance(
            study_uid=study_uid,
            series_uid=series_uids[i % n_series],
            number=i // n_series + 1,
            series_number=i % n_series + 1,
            modality=modality,
            institution=institution,
            patient_id=patient_id,
            patient_name=patient_name,
            sex=sex,
            at=at,
        )
        for i in range(instances)
    ]


def to_bytes(ds: Dataset) -> bytes:
    """A dataset as a DICOM Part 10 file."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def parse(data: bytes) -> Dataset:
    """Read an uploaded instance's header; a malformed file is Invalid with the reason."""
    if len(data) < 132:
        raise Invalid("不是 DICOM 文件：内容过短", code="bad-dicom")
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError) as exc:
        raise Invalid(f"不是有效的 DICOM 文件：{exc}", code="bad-dicom") from None
    missing = [k for k in REQUIRED if not str(ds.get(k, "") or "").strip()]
    if missing:
        raise Invalid(f"DICOM 文件缺少必需的属性：{'、'.join(missing)}", code="bad-dicom")
    return ds


def institution_of(name: str | None, calling_aet: str | None) -> reg.InstitutionRecord:
    """The sending institution: the calling AE title when it is an institution code, else InstitutionName."""
    for candidate in (calling_aet, name):
        if candidate:
            inst = reg.get(candidate.strip()) or reg.resolve_name(candidate.strip())
            if inst is not None:
                return inst
    raise Invalid(
        f"无法识别发送影像的机构（InstitutionName“{name or ''}”，AE“{calling_aet or ''}”）：机构不在注册库中",
        code="unknown-institution",
    )


def _when(tags: dict[str, str]) -> datetime:
    d, t = tags.get("StudyDate", ""), (tags.get("StudyTime", "") or "000000")[:6].ljust(6, "0")
    try:
        return datetime.strptime(d + t, "%Y%m%d%H%M%S").replace(tzinfo=clock.SHANGHAI)
    except ValueError:
        return clock.now()


def orthanc_id(*uids: str) -> str:
    """Orthanc's public id of a resource: SHA-1 of PatientID|StudyUID[|SeriesUID[|SOPInstanceUID]], in 5 dashed groups."""
    h = hashlib.sha1("|".join(uids).encode("utf-8"), usedforsecurity=False).hexdigest()
    return "-".join(h[i : i + 8] for i in range(0, 40, 8))


@dataclass
class SeriesInfo:
    """One series of a study as the PACS (or the uploaded headers) describe it."""

    series_uid: str
    orthanc_id: str | None
    modality: str
    number: int | None
    description: str | None
    instances: list[str]


@dataclass
class StudyInfo:
    """A study's identifying and descriptive tags and its series."""

    study_uid: str
    orthanc_id: str | None
    tags: dict[str, str]
    series: list[SeriesInfo]


def _upsert(
    session: Session, info: StudyInfo, inst: reg.InstitutionRecord, *, replace: bool, checked: bool = False
) -> Study:
    """Record a study (opening its reading task the first time); `replace` sets the counts, else adds them."""
    tags = info.tags
    modality = info.series[0].modality if info.series else "OT"
    study = session.scalar(select(Study).where(Study.study_uid == info.study_uid))
    when = min(_when(tags), clock.now())  # the study's date and time; a clock ahead of ours is cut back
    if study is None:
        pid = tags.get("PatientID", "")
        id_number = pid if len(pid) == 18 and validate_id(pid).ok else None
        stype = modality if modality in svc.default_limits_types("imaging") else "CT"
        req = svc.create_request(
            session, centre_code="imaging", service_type=stype, requester_code=inst.code, actor=f"pacs:{AET}",
            patient_id_number=id_number, patient_local_id=None if id_number else (pid or info.study_uid)[:64],
            patient_name=tags.get("PatientName", "").replace("^", "") or None,
            patient_sex={"M": "1", "F": "2"}.get(tags.get("PatientSex", "")),
            reason=tags.get("StudyDescription") or f"{modality} 检查", at=when, source="pacs", connected_checked=checked,
        )  # fmt: skip
        study = Study(
            study_uid=info.study_uid,
            orthanc_id=info.orthanc_id,
            institution_code=inst.code,
            request_id=req.id,
            modality=modality,
            description=tags.get("StudyDescription"),
            series_count=0,
            instance_count=0,
            performed_at=when,
            source="orthanc",
        )
        session.add(study)
        session.flush()
    study.orthanc_id = info.orthanc_id or study.orthanc_id
    have = {s.series_uid: s for s in session.scalars(select(Series).where(Series.study_id == study.id))}
    for si in info.series:
        row = have.get(si.series_uid)
        if row is None:
            row = Series(study_id=study.id, series_uid=si.series_uid, modality=si.modality, instance_count=0)
            session.add(row)
            have[si.series_uid] = row
        row.orthanc_id, row.number, row.description = si.orthanc_id, si.number, si.description
        row.instance_count = len(si.instances) if replace else row.instance_count + len(si.instances)
        if si.instances and (replace or not row.preview_instance):
            row.preview_instance = si.instances[len(si.instances) // 2]
    study.series_count = len(have)
    study.instance_count = sum(r.instance_count for r in have.values())
    session.flush()
    return study


def record_study(
    session: Session, *, pacs: Pacs, orthanc_id: str, institution_code: str | None = None
) -> Study:
    """Record (or bring up to date from the PACS) a study Orthanc holds, opening its reading task the first time."""
    info = pacs.study(orthanc_id)
    if info is None:
        raise Invalid(f"影像归档系统中没有检查 {orthanc_id}", code="study-not-found")
    tags = {**info.get("PatientMainDicomTags", {}), **info.get("MainDicomTags", {})}
    series_info = [s for s in (pacs.series(sid) for sid in info.get("Series", [])) if s]
    first_instance = next((s["Instances"][0] for s in series_info if s.get("Instances")), None)
    if institution_code:
        inst = svc.institution(institution_code)
    else:
        aet = pacs.instance_metadata(first_instance, "RemoteAET") if first_instance else None
        inst = institution_of(tags.get("InstitutionName"), aet)
    series = [
        SeriesInfo(
            series_uid=s["MainDicomTags"]["SeriesInstanceUID"], orthanc_id=s["ID"], modality=s["MainDicomTags"].get("Modality", "OT"),
            number=int(s["MainDicomTags"]["SeriesNumber"]) if str(s["MainDicomTags"].get("SeriesNumber", "")).isdigit() else None,
            description=s["MainDicomTags"].get("SeriesDescription"), instances=list(s.get("Instances", [])),
        )
        for s in series_info
    ]  # fmt: skip
    if series and all(s.modality == "ECG" for s in series):  # an ECG request's 12-lead object (ecg_dicom)
        raise Invalid("该检查是心电图对象，属于心电申请，不是影像检查", code="not-imaging")
    return _upsert(
        session,
        StudyInfo(study_uid=tags["StudyInstanceUID"], orthanc_id=orthanc_id, tags=tags, series=series),
        inst,
        replace=True,
    )


def studies_of(datasets: list[Dataset]) -> list[StudyInfo]:
    """The studies and series that uploaded instance headers describe, with Orthanc's ids computed locally."""
    out: dict[str, StudyInfo] = {}
    for ds in datasets:
        pid, st, se, sop = (
            str(ds.get("PatientID", "")),
            str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID),
            str(ds.SOPInstanceUID),
        )
        tags = {
            k: str(ds.get(k, "") or "")
            for k in (
                "PatientID",
                "PatientName",
                "PatientSex",
                "StudyDate",
                "StudyTime",
                "StudyDescription",
                "InstitutionName",
            )
        }
        info = out.setdefault(
            st, StudyInfo(study_uid=st, orthanc_id=orthanc_id(pid, st), tags=tags, series=[])
        )
        series = next((x for x in info.series if x.series_uid == se), None)
        if series is None:
            number = ds.get("SeriesNumber")
            series = SeriesInfo(
                series_uid=se,
                orthanc_id=orthanc_id(pid, st, se),
                modality=str(ds.Modality),
                number=int(number) if number is not None else None,
                description=str(ds.get("SeriesDescription", "") or "") or None,
                instances=[],
            )
            info.series.append(series)
        series.instances.append(orthanc_id(pid, st, se, sop))
    return list(out.values())


@dataclass
class FeedResult:
    """One pass over the change feed: studies recorded and problems found."""

    recorded: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    last_seq: int = 0


def follow(session: Session, *, pacs: Pacs, limit: int = 200) -> FeedResult:
    """Read Orthanc's /changes from where rhip stopped; record each stable study (once per change)."""
    state = session.get(FeedState, pacs.key)
    if state is None:
        state = FeedState(pacs=pacs.key, last_seq=0, updated_at=clock.now())
        session.add(state)
    out = FeedResult(last_seq=state.last_seq)
    while True:
        page = pacs.changes(out.last_seq, limit)
        for ch in page.get("Changes", []):
            if ch.get("ChangeType") == "StableStudy" and ch.get("ResourceType") == "Study":
                try:
                    with session.begin_nested():
                        record_study(session, pacs=pacs, orthanc_id=ch["ID"])
                    out.recorded.append(ch["ID"])
                except Invalid as exc:
                    if exc.code == "not-imaging":
                        continue
                    out.problems.append((ch["ID"], exc.detail))
                    log.warning("pacs study not recorded: study=%s code=%s", ch["ID"], exc.code)
        out.last_seq = int(page.get("Last", out.last_seq))
        if page.get("Done", True):
            break
    state.last_seq, state.updated_at = out.last_seq, clock.now()
    session.flush()
    return out


def send_cstore(
    datasets: Iterable[Dataset], *, host: str, port: int, calling_aet: str, called_aet: str = AET
) -> int:
    """Send instances by DICOM C-STORE in one association; how many were stored (status 0x0000)."""
    from pynetdicom import AE

    items = list(datasets)
    ae = AE(ae_title=calling_aet[:16])
    for cls in {str(d.SOPClassUID) for d in items}:
        ae.add_requested_context(cls, ExplicitVRLittleEndian)
    assoc = ae.associate(host, port, ae_title=called_aet)
    if not assoc.is_established:
        raise Invalid(f"无法与 PACS（{host}:{port}）建立 DICOM 关联", code="pacs-association")
    sock = assoc.dul.socket.socket if assoc.dul.socket else None
    if sock is not None:  # small PDUs wait on Nagle + delayed ACK (~40 ms each) otherwise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stored = 0
    try:
        for ds in items:
            status = assoc.send_c_store(ds)
            if status and status.Status == 0x0000:
                stored += 1
    finally:
        assoc.release()
    return stored


def store_upload(session: Session, *, pacs: Pacs, parts: list[bytes], institution_code: str) -> list[Study]:
    """STOW through rhip: check every part (DICOM, institution connected, consistent), forward them to the
    PACS, record their studies. Nothing is forwarded when any part is bad."""
    inst = svc.institution(institution_code)
    if not parts:
        raise Invalid("请求中没有 DICOM 实例", code="no-instances")
    if not svc.is_connected(
        session, centre_code="imaging", institution_code=inst.code, on=clock.local_now().date()
    ):
        raise Invalid(f"{inst.name}尚未接入远程影像诊断平台", code="not-connected")
    datasets = []
    for i, data in enumerate(parts, 1):
        ds = parse(data) if len(parts) == 1 else _parse_nth(data, i)
        if str(ds.SOPClassUID).startswith(WAVEFORM_ROOT) or str(ds.Modality) == "ECG":
            raise Invalid(
                f"第 {i} 个实例是波形对象（SOP 类 {ds.SOPClassUID}），不是影像：心电图请上传到心电申请"
                "（POST /api/v1/telemed/requests/{id}/ecg）",
                code="not-imaging",
            )
        datasets.append(ds)
        named = str(ds.get("InstitutionName", "") or "")
        if named:
            other = reg.resolve_name(named)
            if other is None or other.code != inst.code:
                raise Invalid(
                    f"第 {i} 个实例的机构名称“{named}”与上传机构“{inst.name}”不符",
                    code="institution-mismatch",
                )
    stored = pacs.stow(parts)  # one STOW-RS request, as a modality or gateway would send it
    if stored < len(parts):
        raise Invalid(f"影像归档系统只接收了 {stored}/{len(parts)} 个实例", code="pacs-partial")
    # the instances' headers say everything the record needs: no round trip to the PACS per study
    return [_upsert(session, info, inst, replace=False, checked=True) for info in studies_of(datasets)]


def _parse_nth(data: bytes, i: int) -> Dataset:
    try:
        return parse(data)
    except Invalid as exc:
        raise Invalid(f"第 {i} 个实例：{exc.detail}", code="bad-dicom") from None
