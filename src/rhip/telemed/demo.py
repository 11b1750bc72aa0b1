# ruff: noqa: E501
"""The telemedicine step of `rhip demo`: connections, the month's activity at the demo's scale (a few
hundred small DICOM studies sent by C-STORE through a real Orthanc, recorded from its change feed), the
month's paragraphs."""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import Invalid
from rhip.lake.store import Lake
from rhip.registry import data as reg
from rhip.telemed import (
    delivery,
    ecg,
    ecg_dicom,
    ecg_upload,
    imaging,
    pacs as pacs_mod,
    service as svc,
    stats,
    synth,
)
from rhip.telemed.models import Attachment, Request, Study

CSTORE_EVERY = 5
DICOM_EVERY = 2  # the share of the demo's ECGs an ECG cart sends as DICOM (the rest: WFDB uploads)


def cart_dicom(req: Request, institution: str, *, seed: int) -> bytes:
    """What an ECG cart sends for a request: a General ECG waveform object of the eight leads it records
    (I, II, V1–V6; the limb leads III, aVR, aVL, aVF are derived from I and II on reading)."""
    signal = ecg.synth_signal(seed=seed, heart_rate=60 + seed % 40)
    recorded = [i for i, lead in enumerate(ecg.LEADS) if lead not in ecg_dicom.DERIVABLE]
    ds = ecg_dicom.to_dicom(
        signal[:, recorded],
        500,
        [ecg.LEADS[i] for i in recorded],
        patient_id=req.patient_id_number or req.patient_local_id or "",
        patient_name=req.patient_name or "",
        institution=institution,
        at=req.requested_at,
        sop_class=ecg_dicom.GENERAL_ECG,
    )
    return ecg_dicom.to_bytes(ds)


def attach_ecgs(
    session: Session,
    *,
    folder: Path,
    month: str,
    n: int = 5,
    pacs: pacs_mod.Pacs | None = None,
    max_bytes: int = 8 * 1024**2,
) -> tuple[int, int]:
    """Attach ECGs to the month's first ECG requests that have none: while a PACS runs, every
    DICOM_EVERY-th arrives from the cart as a DICOM waveform (checked and stored in the PACS unchanged),
    the others as synthetic 12-lead WFDB records (kept in the PACS as DICOM 12-lead ECG objects too when
    one runs). (attached, of them as DICOM)"""
    start, end = synth.month_bounds(month)
    rows = session.scalars(
        select(Request.id)
        .where(Request.centre_code == "ecg", Request.requested_at >= start, Request.requested_at < end)
        .where(~select(Attachment.id).where(Attachment.request_id == Request.id).exists())
        .order_by(Request.requested_at)
        .limit(n)
    ).all()
    as_dicom = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, rid in enumerate(rows):
            req = svc.get_request(session, request_id=rid)
            institution = svc.institution(req.requester_code).name
            if pacs is not None and k % DICOM_EVERY == 0:
                data = cart_dicom(req, institution, seed=rid)
                ecg_upload.attach(
                    session, pacs=pacs, req=req, data=data, filename=f"ecg{rid}.dcm", max_bytes=max_bytes
                )
                as_dicom += 1
                continue
            base = ecg.write_record(
                Path(tmp), f"ecg{rid}", ecg.synth_signal(seed=rid, heart_rate=60 + rid % 40)
            )
            att = ecg.attach_ecg(
                session,
                request_id=rid,
                folder=folder,
                header=base.with_suffix(".hea").read_bytes(),
                data=base.with_suffix(".dat").read_bytes(),
                name=f"ecg{rid}.hea",
            )
            if pacs is not None:
                ecg_dicom.archive(pacs, att=att, req=req, institution=institution)
    return len(rows), as_dicom


def live_report(db: Database, lake: Lake, *, month: str) -> tuple[int, int]:
    """One ECG request of the month's patients filed again today, reported and amended by the hub, and the
    outbox drained into intake: the report shows in the patient's shared record. (sent, refused)"""
    start, end = synth.month_bounds(month)
    with db.session() as s, s.begin():
        old = s.scalar(
            select(Request)
            .where(Request.centre_code == "ecg", Request.requested_at >= start, Request.requested_at < end)
            .where(Request.patient_id_number.is_not(None), Request.status == "completed")
            .order_by(Request.id)
            .limit(1)
        )
        done = s.scalar(select(Request.id).where(Request.source == "demo").limit(1))
        if old is None or done is not None:  # the step run again: only what is still due is sent
            res = delivery.drain(db, lake)
            return len(res.sent), len(res.failed)
        req = svc.create_request(
            s,
            centre_code="ecg",
            service_type="resting",
            requester_code=old.requester_code,
            actor="demo",
            patient_id_number=old.patient_id_number,
            patient_local_id=old.patient_local_id,
            patient_name=old.patient_name,
            reason="演示：远程心电报告进入居民健康档案",
            source="demo",
        )
        svc.transition(s, request_id=req.id, to="accepted", actor="demo-cardiologist")
        svc.report(
            s,
            request_id=req.id,
            findings="窦性心律，心率 76 次/分",
            conclusion="正常心电图",
            author="演示专家",
        )
        svc.amend_report(
            s,
            request_id=req.id,
            findings="窦性心律，心率 76 次/分，V4–V6 导联 T 波低平",
            conclusion="T 波改变",
            reason="复核发现 T 波低平",
            author="演示专家",
        )
    res = delivery.drain(db, lake)
    return len(res.sent), len(res.failed)


def real_study_count(scale: float) -> int:
    """How many studies go through the PACS as DICOM: 10 000 × s, at least 10, at most 400."""
    return max(10, min(400, round(10000 * scale)))


def send_studies(
    db: Database, client: pacs_mod.Pacs, studies: list[dict[str, Any]], timeout: float = 120
) -> tuple[int, int]:
    """Send the planned studies (every fifth by C-STORE with the institution code as calling AE, the rest by
    STOW-RS), then follow Orthanc's change feed until all are recorded."""
    sent = 0
    uids = []
    for k, item in enumerate(studies):
        inst = reg.get(item["institution_code"])
        assert inst is not None
        ds = imaging.make_study(
            institution=inst.name,
            modality=item["modality"],
            instances=item["instances"],
            patient_id=item["patient_id"],
            patient_name=item["patient_name"],
            sex=item["sex"],
            at=item["at"],
        )
        if k % CSTORE_EVERY == 0:
            sent += imaging.send_cstore(
                ds, host="127.0.0.1", port=client.dicom_port or 0, calling_aet=inst.code
            )
        else:
            sent += client.stow([imaging.to_bytes(d) for d in ds])
        uids.append(str(ds[0].StudyInstanceUID))
    deadline = time.monotonic() + timeout
    recorded = 0
    while time.monotonic() < deadline:
        with db.session() as s, s.begin():
            imaging.follow(s, pacs=client)
            recorded = s.scalar(select(func.count()).where(Study.study_uid.in_(uids))) or 0
        if recorded >= len(uids):
            break
        time.sleep(0.5)
    return sent, recorded


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: generate and report the month's telemedicine activity; summary rows."""
    manifest = json.loads((synth_dir / "manifest.json").read_text(encoding="utf-8"))
    month, scale = str(manifest["month"]), float(manifest.get("scale", 0.01))
    use_pacs = bool(settings.orthanc_url) or pacs_mod.installed()
    db = Database.from_settings(settings)
    started = time.perf_counter()
    pacs_note = "未安装 Orthanc，影像按医院 PACS 上报的清单记录"
    try:
        with db.session() as s, s.begin():
            plan = synth.generate(
                s,
                month=month,
                scale=scale,
                seed=int(manifest.get("seed", 42)),
                real_studies=real_study_count(scale) if use_pacs else 0,
            )
        real = [x for x in plan.studies if x["real"]]
        # its shutdown goes on beside the next steps (the portal's own PACS, `rhip demo --serve`, waits for it)
        running = (
            pacs_mod.managed(settings.data_dir, settings.orthanc_url, wait_stop=False)
            if real
            else nullcontext(None)
        )
        with running as client:
            if real and client is not None:
                sent, recorded = send_studies(db, client, real)
                if recorded < len(real):
                    raise Invalid(
                        f"影像归档系统只记录了 {recorded}/{len(real)} 个检查", code="pacs-incomplete"
                    )
                pacs_note = f"{len(real)} 个检查（{sent} 个 DICOM 实例）经 C-STORE / STOW-RS 存入 Orthanc 并由变更流记录"
            with db.session() as s, s.begin():
                folder = settings.data_dir.resolve() / "telemed" / "ecg"
                ecgs, as_dicom = attach_ecgs(
                    s, folder=folder, month=month, pacs=client, max_bytes=settings.ecg_max_bytes
                )
                fig = stats.month_figures(s, month=month)
        if client is not None:
            pacs_note += (
                f"；{ecgs} 份 12 导联心电图附于心电申请：{as_dicom} 份由心电图机以 DICOM 波形上传、原样存入 Orthanc，"
                f"{ecgs - as_dicom} 份以 WFDB 上传并转为 DICOM 12 导联心电图对象存入 Orthanc"
            )
        else:
            pacs_note += f"；{ecgs} 份 12 导联心电记录（WFDB）附于心电申请"
        sent, refused = live_report(db, Lake.from_settings(settings), month=month)
        pacs_note += f"；报告及其修改经实时上传进入共享档案 {sent} 份（拒收 {refused}）"
    finally:
        db.dispose()
    seconds = time.perf_counter() - started
    e, i, lab = fig.centres["ecg"].volumes, fig.centres["imaging"].volumes, fig.centres["lab"].volumes
    console.print(f"远程医疗：{sum(plan.requests.values())} 个申请；{pacs_note}；{seconds:.1f} 秒")
    return [
        (
            "远程医疗",
            f"{month}（按 {plan.calibrated_to} 校准 × {scale}）：心电病例 {e['cases']} 份，影像报告 {i['reports']} 份"
            f"（图像 {i['images']} 份），检验报告 {lab['reports']} 份，流转标本 {lab['specimens']} 份；{pacs_note}；用时 {seconds:.1f} 秒",
        )
    ]
