# ruff: noqa: E501
"""More telemedicine routes under /api/v1/telemed: ECGs (WFDB records, DICOM waveforms) and pathology slides attached to
requests, lab specimens (barcodes and scans), the centres' members and events (meetings, lectures)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request as HttpRequest, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rhip.errors import Forbidden, Invalid, NotFound, TooLarge, UnsupportedMedia
from rhip.security.deps import SessionDep, public, require
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed import ecg, ecg_dicom, ecg_upload, pacs as pacs_mod, service as svc, specimens
from rhip.telemed.api_imaging import split_multipart
from rhip.telemed.models import Attachment, Request

router = APIRouter()
log = logging.getLogger(__name__)
SessionDep = SessionDep
Clinicians = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor))]
# an ECG comes from the care team's clinicians or, sent by the cart, under the institution's uploader key
EcgSenders = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor, Role.uploader))]
Viewers = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor, Role.manager, Role.admin))]
Managers = Annotated[Principal, Depends(require(Role.manager, Role.admin))]
MAX_FILE = 64 * 1024**2


class AttachmentRead(BaseModel):
    """A file attached to a request."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    request_id: int
    kind: str
    name: str
    content_type: str
    size: int
    meta: dict | None  # type: ignore[type-arg]


class SpecimenCreate(BaseModel):
    """Label a specimen for a lab request."""

    model_config = ConfigDict(extra="forbid")
    specimen_type: str = Field(min_length=1, max_length=32)


class ScanIn(BaseModel):
    """A scan moving a specimen to its next state."""

    model_config = ConfigDict(extra="forbid")
    state: str
    reason: str | None = Field(default=None, max_length=256)


class SpecimenRead(BaseModel):
    """A specimen and where it is."""

    model_config = ConfigDict(from_attributes=True)
    barcode: str
    request_id: int
    specimen_type: str
    from_code: str
    to_code: str
    state: str
    state_reason: str | None
    collected_at: datetime
    shipped_at: datetime | None
    received_at: datetime | None
    tested_at: datetime | None
    reported_at: datetime | None


class EventCreate(BaseModel):
    """A case-discussion meeting or a video lecture."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    title: str = Field(min_length=1, max_length=128)
    held_at: datetime
    host: str | None = Field(default=None, max_length=64)
    attendees: int = Field(default=0, ge=0)
    case_ids: list[int] | None = None


class EventRead(BaseModel):
    """A centre's event."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    centre_code: str
    kind: str
    title: str
    held_at: datetime
    host: str | None
    attendees: int
    case_ids: list[int] | None


class MemberCreate(BaseModel):
    """An expert or doctor joining a centre."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    institution_code: str
    role: str
    specialty: str | None = Field(default=None, max_length=64)
    joined_on: date


class MemberRead(BaseModel):
    """A centre's member (names are staff, not patients)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    centre_code: str
    name: str
    institution_code: str
    role: str
    specialty: str | None
    joined_on: date


def _folder(request: HttpRequest, kind: str) -> Path:
    return Path(request.app.state.settings.data_dir).resolve() / "telemed" / kind


def _pacs(request: HttpRequest) -> pacs_mod.Pacs | None:
    """The PACS this server uses, if one runs."""
    settings = request.app.state.settings
    return pacs_mod.client_for(settings.data_dir, settings.orthanc_url)


def _care_team(who: Principal, req: Request) -> None:
    if who.role not in (Role.manager, Role.admin) and not svc.may_see(who.institution_code, req):
        raise Forbidden("只有申请方和承担方的医生可以访问此申请的文件", code="not-care-team")


async def _read(upload: UploadFile, limit: int = MAX_FILE) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"文件不能超过 {ecg_upload.size_text(limit)}", code="too-large")
    return data


async def _body(request: HttpRequest, limit: int) -> bytes:
    """The raw request body, refused (413) once past `limit` bytes, without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        ecg_upload.check_size(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        ecg_upload.check_size(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/requests/{request_id}/ecg", response_model=AttachmentRead, status_code=201)
async def upload_ecg(
    request: HttpRequest,
    session: SessionDep,
    who: EcgSenders,
    request_id: int,
    header: Annotated[UploadFile | None, File(description="WFDB header (.hea)")] = None,
    signal: Annotated[UploadFile | None, File(description="WFDB signal (.dat)")] = None,
    dicom: Annotated[
        UploadFile | None, File(description="DICOM ECG waveform (12-lead or General ECG)")
    ] = None,
) -> AttachmentRead:
    """Attach an ECG to an ECG request: a WFDB record (multipart `header` .hea + `signal` .dat), or a DICOM ECG
    waveform object as an ECG cart sends it (multipart `dicom`, an `application/dicom` body, or one instance
    by STOW-RS `multipart/related; type=application/dicom`), checked and stored in the PACS unchanged."""
    limit = int(request.app.state.settings.ecg_max_bytes)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/dicom", "multipart/related"):
        parts = split_multipart(await _body(request, limit), request.headers["content-type"])
        if len(parts) != 1:
            raise Invalid(f"每次上传一个心电图对象（收到 {len(parts)} 个）", code="one-instance")
        return await _upload_dicom(request, session, who, request_id, parts[0], None)
    if ctype != "multipart/form-data":
        raise UnsupportedMedia(
            "请以 multipart/form-data（WFDB 的 header 与 signal，或 DICOM 的 dicom）、application/dicom 或"
            " multipart/related; type=application/dicom 上传心电图",
            code="bad-media-type",
        )
    if dicom is not None:
        if header is not None or signal is not None:
            raise Invalid("请只上传一种格式：WFDB（header 与 signal）或 DICOM（dicom）", code="mixed-formats")
        return await _upload_dicom(
            request, session, who, request_id, await _read(dicom, limit), dicom.filename
        )
    if header is None or signal is None:
        raise Invalid(
            "请上传 WFDB 心电记录（header 与 signal 两个文件）或 DICOM 心电文件（dicom）",
            code="ecg-file-required",
        )
    hea, dat = await _read(header, limit), await _read(signal, limit)
    ecg_upload.check_size(len(hea) + len(dat), limit)
    with session.begin():
        _care_team(who, svc.get_request(session, request_id=request_id))
        att = ecg.attach_ecg(
            session,
            request_id=request_id,
            folder=_folder(request, "ecg"),
            header=hea,
            data=dat,
            name=header.filename or "ecg.hea",
        )
        client = _pacs(request)
        if client is not None:  # kept as DICOM in the PACS too; without one the WFDB record serves alone
            try:
                req = svc.get_request(session, request_id=request_id)
                inst = svc.institution(req.requester_code)
                ecg_dicom.archive(client, att=att, req=req, institution=inst.name)
            except pacs_mod.PacsUnavailable as exc:
                log.warning("ECG not archived in the PACS: %s", type(exc).__name__)
        return AttachmentRead.model_validate(att)


async def _upload_dicom(
    request: HttpRequest,
    session: SessionDep,
    who: Principal,
    request_id: int,
    data: bytes,
    filename: str | None,
) -> AttachmentRead:
    """A DICOM ECG: checked in one read transaction, then stored in the PACS and recorded in a second; a
    refused or unreachable PACS (503) leaves the request as it was, and a record that fails to commit takes
    the instance out of the PACS again."""
    client = _pacs(request)
    limit = int(request.app.state.settings.ecg_max_bytes)

    def work() -> AttachmentRead:
        with session.begin():
            _care_team(who, svc.get_request(session, request_id=request_id))
            wave = ecg_upload.check(
                session, req=svc.get_request(session, request_id=request_id), data=data, max_bytes=limit
            )
        with ecg_upload.kept_in(client, data) as stored, session.begin():
            req = svc.get_request(session, request_id=request_id)
            att = ecg_upload.record(
                session, req=req, wave=wave, stored=stored, filename=filename, size=len(data)
            )
            return AttachmentRead.model_validate(att)

    return await run_in_threadpool(work)


@router.post("/requests/{request_id}/slides", response_model=AttachmentRead, status_code=201)
async def upload_slide(
    request: HttpRequest,
    session: SessionDep,
    who: Clinicians,
    request_id: int,
    image: Annotated[UploadFile, File()],
) -> AttachmentRead:
    """Attach a pathology slide image (PNG or JPEG) to a pathology request."""
    data = await _read(image)
    with session.begin():
        _care_team(who, svc.get_request(session, request_id=request_id))
        att = ecg.attach_slide(
            session,
            request_id=request_id,
            folder=_folder(request, "slides"),
            name=image.filename or "slide.png",
            data=data,
        )
        return AttachmentRead.model_validate(att)


def _attachment(session: SessionDep, who: Principal, attachment_id: int) -> Attachment:
    att = session.get(Attachment, attachment_id)
    if att is None:
        raise NotFound(f"没有附件 {attachment_id}", code="attachment-not-found")
    svc.open_clinical(
        session, who=who, req=svc.get_request(session, request_id=att.request_id), what=att.kind
    )
    return att


@router.get("/attachments/{attachment_id}")
def get_attachment(request: HttpRequest, session: SessionDep, who: Viewers, attachment_id: int) -> Response:
    """A slide image, or an ECG record drawn as its 12-lead strip (SVG)."""
    with session.begin():
        att = _attachment(session, who, attachment_id)
        if att.kind == "ecg":
            return Response(ecg_dicom.strip(att, _pacs(request)), media_type="image/svg+xml")
        return FileResponse(att.path, media_type=att.content_type)


@router.post("/requests/{request_id}/specimens", response_model=SpecimenRead, status_code=201)
def create_specimen(
    session: SessionDep, who: Clinicians, request_id: int, body: SpecimenCreate
) -> SpecimenRead:
    """Label a specimen for a lab request (the requester prints the barcode)."""
    with session.begin():
        req = svc.get_request(session, request_id=request_id)
        if who.institution_code != req.requester_code:
            raise Forbidden("只有申请机构可以登记标本", code="not-requester")
        return SpecimenRead.model_validate(
            specimens.collect(session, request_id=request_id, specimen_type=body.specimen_type)
        )


@router.post("/specimens/{barcode}/scan", response_model=SpecimenRead)
def scan_specimen(session: SessionDep, who: Clinicians, barcode: str, body: ScanIn) -> SpecimenRead:
    """Scan a specimen into its next state (shipped by the requester; received, tested, reported or rejected by the lab)."""
    with session.begin():
        sp = specimens.get(session, barcode=barcode)
        side = sp.from_code if body.state == "shipped" else sp.to_code
        if who.institution_code != side:
            raise Forbidden(
                "该环节应由{}扫码".format("送检机构" if body.state == "shipped" else "检验中心"),
                code="wrong-side",
            )
        return SpecimenRead.model_validate(
            specimens.move(session, barcode=barcode, to=body.state, actor=who.subject, reason=body.reason)
        )


@router.get("/specimens/{barcode}", response_model=SpecimenRead)
def get_specimen(session: SessionDep, who: Viewers, barcode: str) -> SpecimenRead:
    """Where a specimen is."""
    with session.begin():
        sp = specimens.get(session, barcode=barcode)
        if who.role not in (Role.manager, Role.admin) and who.institution_code not in (
            sp.from_code,
            sp.to_code,
        ):
            raise Forbidden("只有送检机构和检验中心可以查看该标本", code="not-care-team")
        return SpecimenRead.model_validate(sp)


@router.get("/centres/{centre_code}/events", response_model=list[EventRead], dependencies=[Depends(public())])
def list_events(session: SessionDep, centre_code: str) -> list[EventRead]:
    """A centre's case-discussion meetings and video lectures."""
    with session.begin():
        return [EventRead.model_validate(e) for e in svc.get_all_events(session, centre_code=centre_code)]


@router.post("/centres/{centre_code}/events", response_model=EventRead, status_code=201)
def create_event(session: SessionDep, who: Viewers, centre_code: str, body: EventCreate) -> EventRead:
    """Record a meeting or lecture (the centre's hub staff or the information centre)."""
    with session.begin():
        if (
            who.role not in (Role.manager, Role.admin)
            and who.institution_code != svc.centre(centre_code).hub_code
        ):
            raise Forbidden("只有承担该中心业务的医院可以登记活动", code="not-performer")
        return EventRead.model_validate(svc.add_event(session, centre_code=centre_code, **body.model_dump()))


@router.get(
    "/centres/{centre_code}/members", response_model=list[MemberRead], dependencies=[Depends(public())]
)
def list_members(session: SessionDep, centre_code: str) -> list[MemberRead]:
    """A centre's experts and doctors."""
    with session.begin():
        svc.centre(centre_code)
        return [MemberRead.model_validate(m) for m in svc.get_all_members(session, centre_code=centre_code)]


@router.post("/centres/{centre_code}/members", response_model=MemberRead, status_code=201)
def create_member(session: SessionDep, who: Managers, centre_code: str, body: MemberCreate) -> MemberRead:
    """Register an expert or doctor with a centre."""
    with session.begin():
        return MemberRead.model_validate(
            svc.add_member(session, centre_code=centre_code, **body.model_dump())
        )
