"""Imaging routes under /api/v1/telemed/imaging: STOW through rhip (checked, then forwarded to Orthanc and
recorded), a request's study and series, series previews proxied from Orthanc (the page loads nothing from
another origin), one pass over Orthanc's change feed."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request as HttpRequest
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from rhip.errors import Forbidden, NotFound, UnsupportedMedia
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed import imaging, pacs as pacs_mod, service as svc
from rhip.telemed.models import Series, Study

router = APIRouter()
SessionDep = SessionDep
Uploaders = Annotated[Principal, Depends(require(Role.uploader))]
Viewers = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor, Role.manager, Role.admin))]
Managers = Annotated[Principal, Depends(require(Role.manager, Role.admin))]
MAX_STUDY_BYTES = 512 * 1024**2


class SeriesRead(BaseModel):
    """A series and whether a preview can be shown."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    series_uid: str
    modality: str
    number: int | None
    description: str | None
    instance_count: int
    preview_instance: str | None


class StudyRead(BaseModel):
    """An ImagingStudy as rhip recorded it."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    study_uid: str
    institution_code: str
    request_id: int | None
    modality: str
    description: str | None
    series_count: int
    instance_count: int
    source: str
    series: list[SeriesRead] = []


class FeedRead(BaseModel):
    """One pass over the change feed."""

    recorded: int
    problems: list[str]
    last_seq: int


def the_pacs(request: HttpRequest) -> pacs_mod.Pacs:
    """The PACS this server uses, or 503."""
    settings = request.app.state.settings
    client = pacs_mod.client_for(settings.data_dir, settings.orthanc_url)
    if client is None:
        raise pacs_mod.PacsUnavailable("影像归档系统未启动：请用 rhip serve 启动，或设置 RHIP_ORTHANC_URL")
    return client


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The parts of a multipart/related body (STOW-RS), or the body itself for application/dicom."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/dicom":
        return [body]
    if ctype != "multipart/related":
        raise UnsupportedMedia(
            "请以 application/dicom 或 multipart/related; type=application/dicom 上传", code="bad-media-type"
        )
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise UnsupportedMedia("multipart/related 缺少 boundary", code="bad-media-type")
    sep = b"--" + m.group(1).encode()
    parts = []
    for chunk in body.split(sep)[1:]:
        if chunk.startswith(b"--"):
            break
        _head, _, data = chunk.partition(b"\r\n\r\n")
        parts.append(data[:-2] if data.endswith(b"\r\n") else data)
    return parts


def study_read(session: SessionDep, study: Study) -> StudyRead:
    """A study with its series."""
    out = StudyRead.model_validate(study)
    rows = session.scalars(
        select(Series).where(Series.study_id == study.id).order_by(Series.number, Series.id)
    )
    out.series = [SeriesRead.model_validate(s) for s in rows]
    return out


@router.post("/studies", response_model=list[StudyRead], status_code=201)
async def stow(request: HttpRequest, session: SessionDep, who: Uploaders) -> list[StudyRead]:
    """STOW-RS through rhip: the uploading institution's instances, checked, stored in Orthanc, recorded."""
    body = await request.body()
    if len(body) > MAX_STUDY_BYTES:
        from rhip.errors import TooLarge

        raise TooLarge("单次上传不能超过 512 MB", code="too-large")
    parts = split_multipart(body, request.headers.get("content-type", ""))
    client = the_pacs(request)

    def work() -> list[StudyRead]:
        with session.begin():
            studies = imaging.store_upload(
                session, pacs=client, parts=parts, institution_code=str(who.institution_code)
            )
            return [study_read(session, s) for s in studies]

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(work)


def _study_for_request(session: SessionDep, who: Principal, request_id: int) -> Study:
    req = svc.get_request(session, request_id=request_id)
    if who.role not in (Role.manager, Role.admin) and not svc.may_see(who.institution_code, req):
        raise Forbidden("只有申请方和承担方的医生可以查看影像", code="not-care-team")
    study = session.scalar(select(Study).where(Study.request_id == req.id))
    if study is None:
        raise NotFound("该申请没有影像检查", code="study-not-found")
    return study


@router.get("/requests/{request_id}/study", response_model=StudyRead)
def get_study(session: SessionDep, who: Viewers, request_id: int) -> StudyRead:
    """The imaging study of a request, with its series."""
    with session.begin():
        return study_read(session, _study_for_request(session, who, request_id))


@router.get("/series/{series_id}/preview")
def get_preview(request: HttpRequest, session: SessionDep, who: Viewers, series_id: int) -> Response:
    """A PNG preview of a series' middle image, fetched from Orthanc through rhip."""
    with session.begin():
        series = session.get(Series, series_id)
        if series is None:
            raise NotFound(f"没有序列 {series_id}", code="series-not-found")
        study = session.get(Study, series.study_id)
        assert study is not None
        if study.request_id is None:  # a study no request reads: its images are the uploader's
            if who.institution_code != study.institution_code:
                raise Forbidden("只有申请方和承担方的医生可以查看影像", code="not-care-team")
        else:
            req = svc.get_request(session, request_id=study.request_id)
            svc.open_clinical(session, who=who, req=req, what="image")
        instance = series.preview_instance
    if not instance:
        raise NotFound("该序列在影像归档系统中没有图像", code="preview-not-found")
    png = the_pacs(request).preview(instance)
    if png is None:
        raise NotFound("影像归档系统中找不到该图像", code="preview-not-found")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/follow", response_model=FeedRead)
def post_follow(request: HttpRequest, session: SessionDep, who: Managers) -> FeedRead:
    """Read Orthanc's change feed now and record the new stable studies."""
    client = the_pacs(request)
    with session.begin():
        res = imaging.follow(session, pacs=client)
    return FeedRead(
        recorded=len(res.recorded),
        problems=[f"{sid}: {msg}" for sid, msg in res.problems],
        last_seq=res.last_seq,
    )
