# ruff: noqa: E501
"""ECGs as DICOM waveform objects. Written: a WFDB record's signal as a 12-Lead ECG Waveform instance (SOP class
1.2.840.10008.5.1.4.1.1.9.1.1; one multiplex group, 16-bit signed samples in µV, leads coded in MDC), stored in
the PACS like any other instance. Read: that, or what a hospital's ECG cart sends (12-lead or General ECG,
MDC or SCP-ECG lead codes, µV/mV/V, a RHYTHM group beside MEDIAN beats, eight leads recorded and four derived),
checked against the centre's rules (data/ecg.yaml) and turned into the signal the reading page draws."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from rhip import clock
from rhip.errors import Invalid, NotFound
from rhip.telemed import ecg
from rhip.telemed.imaging import orthanc_id
from rhip.telemed.models import Attachment, Request
from rhip.telemed.pacs import Pacs, PacsUnavailable

TWELVE_LEAD_ECG = UID("1.2.840.10008.5.1.4.1.1.9.1.1")
GENERAL_ECG = UID("1.2.840.10008.5.1.4.1.1.9.1.2")
# ISO/IEEE 11073 MDC codes of the 12 leads (DICOM CID 3001)
MDC = {
    "I": "2:1", "II": "2:2", "V1": "2:3", "V2": "2:4", "V3": "2:5", "V4": "2:6", "V5": "2:7", "V6": "2:8",
    "III": "2:61", "aVR": "2:62", "aVL": "2:63", "aVF": "2:64",
}  # fmt: skip
DERIVABLE = ("III", "aVR", "aVL", "aVF")  # limb leads computed from I and II
LEAD_NUMBER = {int(code[2:]): lead for lead, code in MDC.items()}
DICOM_TYPE = "application/dicom"
UNIT_MV = {"uV": 0.001, "mV": 1.0, "V": 1000.0}  # UCUM voltage units, to millivolts
WHO_TAGS = ("PatientID", "PatientBirthDate", "PatientSex", "InstitutionName")
# what pydicom and numpy raise on a broken file (struct.error from packed values, not a ValueError)
PARSE_ERRORS = (
    InvalidDicomError, ValueError, EOFError, OSError, LookupError, TypeError, AttributeError,
    struct.error, ArithmeticError, NotImplementedError,
)  # fmt: skip


@lru_cache(maxsize=1)
def ecg_rules() -> dict[str, Any]:
    """The centre's rules for ECG waveform objects (data/ecg.yaml)."""
    path = Path(__file__).parent / "data" / "ecg.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _coded(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def to_dicom(
    signal: np.ndarray,
    fs: int,
    leads: list[str],
    *,
    patient_id: str,
    patient_name: str,
    institution: str,
    at: datetime,
    study_uid: str | None = None,
    sop_class: UID = TWELVE_LEAD_ECG,
) -> Dataset:
    """A 12-Lead (or General) ECG Waveform instance of a (samples × leads) signal in mV."""
    if signal.ndim != 2 or signal.shape[1] != len(leads) or any(lead not in MDC for lead in leads):
        raise Invalid(f"心电信号的导联应取自 {'、'.join(MDC)}", code="bad-ecg")
    if sop_class == TWELVE_LEAD_ECG and signal.shape[0] > 16384:  # the 12-lead ECG IOD's limit
        raise Invalid("12 导联心电图对象至多 16384 个采样点", code="bad-ecg")
    limits = ecg_rules()["sop_classes"].get(str(sop_class))
    if limits is None or not limits["min_hz"] <= fs <= limits["max_hz"]:
        raise Invalid("心电图对象的 SOP 类或采样率不在心电中心接收的范围内（data/ecg.yaml）", code="bad-ecg")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    local = at.astimezone(clock.SHANGHAI)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = local.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = local.strftime("%H%M%S")
    ds.AcquisitionDateTime = local.strftime("%Y%m%d%H%M%S")
    ds.Modality = "ECG"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstitutionName, ds.PatientID, ds.PatientName = institution, patient_id, patient_name
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, 1
    ds.StudyDescription = "远程心电"
    micro = np.clip(np.rint(signal * 1000.0), -32768, 32767).astype("<i2")  # µV, one count a microvolt
    group = Dataset()
    group.MultiplexGroupLabel = "RHYTHM"
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = len(leads)
    group.NumberOfWaveformSamples = int(signal.shape[0])
    group.SamplingFrequency = fs
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    channels = []
    for lead in leads:
        ch = Dataset()
        ch.ChannelSourceSequence = [_coded(MDC[lead], "MDC", f"Lead {lead}")]
        ch.ChannelSensitivity = "1"
        ch.ChannelSensitivityUnitsSequence = [_coded("uV", "UCUM", "microvolt")]
        ch.ChannelSensitivityCorrectionFactor = "1"
        ch.ChannelBaseline = "0"
        ch.ChannelSampleSkew = "0"
        ch.WaveformBitsStored = 16
        channels.append(ch)
    group.ChannelDefinitionSequence = channels
    group.WaveformData = micro.tobytes()  # interleaved: sample by sample, every channel
    ds.WaveformSequence = [group]
    return ds


def to_bytes(ds: Dataset) -> bytes:
    """The instance as a DICOM Part 10 file."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def lead_of(code: Dataset) -> str | None:
    """The lead a channel source code names: MDC (CID 3001, "2:1"), SCP-ECG ("5.6.3-9-1") or its meaning."""
    value = str(code.get("CodeValue", "") or "").strip()
    for prefix in ("2:", "5.6.3-9-"):  # both number the leads alike: 1 I, 2 II, 3–8 V1–V6, 61–64 III–aVF
        if value.startswith(prefix) and value[len(prefix) :].isdigit():
            return LEAD_NUMBER.get(int(value[len(prefix) :]))
    meaning = str(code.get("CodeMeaning", "") or "").strip().removeprefix("Lead ").strip()
    return next((lead for lead in ecg.LEADS if lead.lower() == meaning.lower()), None)


@dataclass
class Waveform:
    """An ECG read from a DICOM waveform object: samples × leads in mV, the leads rhip derived, its UIDs."""

    signal: np.ndarray
    fs: int
    leads: list[str]
    derived: list[str]
    sop_class: str
    sop_instance_uid: str
    tags: dict[str, str]  # who and where: PatientID, other IDs, birth date, sex, InstitutionName

    @property
    def seconds(self) -> float:
        """The recording's length."""
        return round(float(self.signal.shape[0]) / self.fs, 2)


def _bad(detail: str, code: str) -> Invalid:
    return Invalid(detail, code=code)


def _group(groups: list[Dataset]) -> int:
    """The multiplex group to read: the one labelled RHYTHM, else the longest (a cart's MEDIAN beats are
    a second, short group)."""
    labels = [str(g.get("MultiplexGroupLabel", "") or "").upper() for g in groups]
    if "RHYTHM" in labels:
        return labels.index("RHYTHM")
    return max(range(len(groups)), key=lambda i: int(groups[i].get("NumberOfWaveformSamples", 0) or 0))


def derive_limb_leads(signal: np.ndarray, leads: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """III, aVR, aVL and aVF computed from I and II where missing (Einthoven, Goldberger): the leads a cart
    records as eight and shows as twelve. (signal, leads, derived)"""
    if "I" not in leads or "II" not in leads:
        return signal, leads, []
    one, two = signal[:, leads.index("I")], signal[:, leads.index("II")]
    formulas = {"III": two - one, "aVR": -(one + two) / 2, "aVL": one - two / 2, "aVF": two - one / 2}
    derived = [lead for lead in formulas if lead not in leads]
    if not derived:
        return signal, leads, []
    extra = np.column_stack([formulas[lead] for lead in derived])
    return np.hstack([signal, extra]), leads + derived, derived


def read(data: bytes) -> Waveform:
    """An ECG waveform object checked against the centre's rules (data/ecg.yaml): a DICOM file, an accepted
    waveform SOP class, leads it can name, voltage units, a sane rate, length and amplitude."""
    try:
        ds = dcmread(io.BytesIO(data))
        sop = str(ds.get("SOPClassUID", "") or "")
    except PARSE_ERRORS as exc:
        raise _bad(f"上传的文件不是 DICOM 文件：{exc}", "not-dicom") from None
    if not sop:  # a preamble and "DICM" with nothing a DICOM object must have
        raise _bad("上传的文件不是 DICOM 对象：没有 SOP 类（SOPClassUID）", "not-dicom")
    try:
        return _read(ds, sop)
    except PARSE_ERRORS as exc:  # pydicom parses an element when it is first read: a broken one fails here
        raise _bad(f"心电波形对象无法解析：{exc}", "bad-waveform") from None


def _read(ds: Dataset, sop: str) -> Waveform:
    rules = ecg_rules()
    accepted = rules["sop_classes"]
    if sop not in accepted:
        kinds = "、".join(f"{v['label']}（{k}）" for k, v in accepted.items())
        raise _bad(
            f"该 DICOM 对象不是心电波形（SOP 类 {sop}，{UID(sop).name}）：心电中心只接收 {kinds}",
            "not-ecg-waveform",
        )
    if str(ds.get("Modality", "") or "").upper() != "ECG":  # Type 1 in every ECG IOD; the feed keys on it
        raise _bad(
            f"心电波形对象的检查类型（Modality）应为 ECG，而不是“{ds.get('Modality', '')}”", "bad-waveform"
        )
    groups = list(ds.get("WaveformSequence") or [])
    if not groups:
        raise _bad("心电波形对象中没有波形数据（WaveformSequence 为空），没有导联", "no-leads")
    index = _group(groups)
    group = groups[index]
    channels = list(group.get("ChannelDefinitionSequence") or [])
    n_ch = int(group.get("NumberOfWaveformChannels", 0) or 0)
    n_s = int(group.get("NumberOfWaveformSamples", 0) or 0)
    if not channels or not n_ch or not n_s:
        raise _bad("心电波形对象中没有导联（通道数或采样点数为 0）", "no-leads")
    if len(channels) != n_ch:
        raise _bad(f"通道定义 {len(channels)} 个，与通道数 {n_ch} 不符", "bad-waveform")
    named = [
        lead_of(ch.ChannelSourceSequence[0]) if ch.get("ChannelSourceSequence") else None for ch in channels
    ]
    keep = [i for i, lead in enumerate(named) if lead and lead not in named[:i]]
    if not keep:
        raise _bad("心电波形对象的通道中没有可识别的心电导联（MDC 或 SCP-ECG 编码）", "no-leads")
    scale = []
    for i in keep:
        units = channels[i].get("ChannelSensitivityUnitsSequence")
        unit = str(units[0].get("CodeValue", "") if units else "")
        if unit not in UNIT_MV:
            raise _bad(f"导联 {named[i]} 的单位“{unit or '缺失'}”不是电压单位（uV、mV、V）", "bad-units")
        scale.append(UNIT_MV[unit])
    fs = float(group.get("SamplingFrequency", 0) or 0)
    lo, hi = accepted[sop]["min_hz"], accepted[sop]["max_hz"]
    if not lo <= fs <= hi:
        raise _bad(f"采样率 {fs:g} Hz 不在{accepted[sop]['label']}的 {lo}–{hi} Hz 之内", "bad-sampling")
    if n_s / fs < rules["min_seconds"]:
        raise _bad(f"记录只有 {n_s / fs:.2f} 秒，至少需要 {rules['min_seconds']} 秒", "bad-sampling")
    values = ds.waveform_array(index)  # scaled by sensitivity, correction factor and baseline
    signal = np.asarray(values, dtype=float)[:, keep] * np.asarray(scale)
    peak = float(np.abs(signal).max())
    if not np.isfinite(peak) or peak > rules["max_abs_mv"]:
        raise _bad(f"幅值达 {peak:g} mV，超出 ±{rules['max_abs_mv']} mV：单位或灵敏度可能有误", "bad-units")
    leads = [str(named[i]) for i in keep]
    signal, leads, derived = derive_limb_leads(signal, leads)
    order = sorted(range(len(leads)), key=lambda j: ecg.LEADS.index(leads[j]))
    return Waveform(
        signal=signal[:, order],
        fs=round(fs),
        leads=[leads[j] for j in order],
        derived=derived,
        sop_class=sop,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        tags=_who(ds),
    )


def _who(ds: Dataset) -> dict[str, str]:
    tags = {k: str(ds.get(k, "") or "").strip() for k in WHO_TAGS}
    others = ds.get("OtherPatientIDsSequence") or []
    tags["OtherPatientIDs"] = "\\".join(str(o.get("PatientID", "") or "").strip() for o in others)
    return tags


def from_dicom(data: bytes) -> tuple[np.ndarray, int, list[str]]:
    """(signal in mV, sampling rate, leads) of an ECG waveform object (see read); Invalid for anything else."""
    wave = read(data)
    return wave.signal, wave.fs, wave.leads


def archive(pacs: Pacs, *, att: Attachment, req: Request, institution: str) -> str:
    """Store an attached WFDB record in the PACS as a 12-lead ECG object; its Orthanc id (kept in the
    attachment's meta, from which the strip is then read back)."""
    signal, fs, leads = ecg.read_record(Path(att.path))
    ds = to_dicom(
        signal,
        fs,
        leads,
        patient_id=req.patient_local_id or req.patient_id_number or f"req{req.id}",
        patient_name=req.patient_name or "",
        institution=institution,
        at=att.created_at,
    )
    pacs.stow([to_bytes(ds)])
    oid = orthanc_id(
        str(ds.PatientID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
    )
    att.meta = {**(att.meta or {}), "dicom": {"orthanc_id": oid, "sop_instance_uid": str(ds.SOPInstanceUID)}}
    return oid


def strip(att: Attachment, pacs: Pacs | None) -> str:
    """The strip of an ECG attachment: read back from its DICOM object in the PACS when it has one there,
    else from the WFDB record it was built from. An ECG uploaded as DICOM lives in the PACS only: without
    it, 503 naming the PACS (or 404 when the PACS no longer holds the object)."""
    dicom = (att.meta or {}).get("dicom")
    native = att.content_type == DICOM_TYPE
    if dicom and pacs is not None:
        try:
            data = pacs.instance_file(str(dicom["orthanc_id"]))
        except PacsUnavailable:
            if native:
                raise
            data = None
        if data is not None:
            signal, fs, leads = from_dicom(data)
            return ecg.strip_svg_of(signal, fs, leads, key=str(att.id), name=att.name)
        if native:
            raise NotFound("影像归档系统中找不到该心电图对象", code="ecg-not-in-pacs")
    if native:
        raise PacsUnavailable("该心电图以 DICOM 对象保存在影像归档系统中，影像归档系统（Orthanc）未启动")
    return ecg.strip_svg(att)
