"""12-lead ECGs as DICOM 12-Lead ECG Waveform objects (SOP class 1.2.840.10008.5.1.4.1.1.9.1.1): built from
a WFDB record's signal (one multiplex group, 16-bit signed samples in µV, leads coded in MDC), stored in the
PACS like any other instance, and read back into the signal the reading page draws."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from rhip import clock
from rhip.errors import Invalid
from rhip.telemed import ecg
from rhip.telemed.imaging import orthanc_id
from rhip.telemed.models import Attachment, Request
from rhip.telemed.pacs import Pacs, PacsUnavailable

TWELVE_LEAD_ECG = UID("1.2.840.10008.5.1.4.1.1.9.1.1")
# ISO/IEEE 11073 MDC codes of the 12 leads (DICOM CID 3001)
MDC = {
    "I": "2:1", "II": "2:2", "V1": "2:3", "V2": "2:4", "V3": "2:5", "V4": "2:6", "V5": "2:7", "V6": "2:8",
    "III": "2:61", "aVR": "2:62", "aVL": "2:63", "aVF": "2:64",
}  # fmt: skip
LEAD_OF = {code: lead for lead, code in MDC.items()}


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
) -> Dataset:
    """A 12-Lead ECG Waveform instance of a (samples × leads) signal in mV."""
    if signal.ndim != 2 or signal.shape[1] != len(leads) or any(lead not in MDC for lead in leads):
        raise Invalid(f"心电信号应为 12 导联（{'、'.join(MDC)}）", code="bad-ecg")
    if signal.shape[0] > 16384 or not 200 <= fs <= 1000:  # the 12-lead ECG IOD's limits
        raise Invalid("12 导联心电图对象至多 16384 个采样点，采样率 200–1000 Hz", code="bad-ecg")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = TWELVE_LEAD_ECG
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = TWELVE_LEAD_ECG, meta.MediaStorageSOPInstanceUID
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


def from_dicom(data: bytes) -> tuple[np.ndarray, int, list[str]]:
    """(signal in mV, sampling rate, leads) of a 12-lead ECG instance; Invalid for anything else."""
    try:
        ds = dcmread(io.BytesIO(data))
        if str(ds.SOPClassUID) != TWELVE_LEAD_ECG:
            raise Invalid(f"不是 12 导联心电图对象（SOP 类 {ds.SOPClassUID}）", code="bad-ecg")
        group = ds.WaveformSequence[0]
        leads = [
            LEAD_OF.get(ch.ChannelSourceSequence[0].CodeValue, "?") for ch in group.ChannelDefinitionSequence
        ]
        units = {ch.ChannelSensitivityUnitsSequence[0].CodeValue for ch in group.ChannelDefinitionSequence}
        values = ds.waveform_array(0)  # scaled by sensitivity, correction factor and baseline
    except (InvalidDicomError, AttributeError, IndexError, KeyError, ValueError, EOFError) as exc:
        raise Invalid(f"不是有效的心电图 DICOM 对象：{exc}", code="bad-ecg") from None
    if "?" in leads or units - {"uV", "mV"}:
        raise Invalid("心电图对象的导联或单位无法识别", code="bad-ecg")
    scale = 0.001 if units == {"uV"} else 1.0
    return np.asarray(values, dtype=float) * scale, int(float(group.SamplingFrequency)), leads


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
    else from the WFDB record it was built from."""
    dicom = (att.meta or {}).get("dicom")
    if dicom and pacs is not None:
        try:
            data = pacs.instance_file(str(dicom["orthanc_id"]))
        except PacsUnavailable:
            data = None
        if data is not None:
            signal, fs, leads = from_dicom(data)
            return ecg.strip_svg_of(signal, fs, leads, key=str(att.id), name=att.name)
    return ecg.strip_svg(att)
