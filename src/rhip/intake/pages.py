"""Portal pages for intake: an institution's recent uploads (receipts) and their problem lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from rhip.intake import service
from rhip.intake.rules import RULES
from rhip.intake.schemas import batch_read
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
VIEWERS = (Role.uploader, Role.manager, Role.admin, Role.auditor)


@router.get("/intake", response_class=HTMLResponse)
def uploads_page(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
    institution: str | None = None,
) -> HTMLResponse:
    """数据采集：本机构（或管理员选定机构）最近的上传回执与问题。"""
    code = principal.institution_code if principal.role is Role.uploader else institution
    batches = [
        batch_read(session, b, problems_limit=0)
        for b in service.recent_batches(session, institution_code=code, limit=100)
    ]
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        "intake/uploads.html",
        {"batches": batches, "institution": code, "channels": service.CHANNELS},
    )
    return response


@router.get("/intake/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(
    batch_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
) -> HTMLResponse:
    """一个回执：各数据表的接收、入库、重复、拒收数和问题清单。"""
    batch = service.get_batch(session, batch_id=batch_id, principal=principal)
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        "intake/batch.html",
        {"b": batch_read(session, batch, problems_limit=500), "rules": RULES, "channels": service.CHANNELS},
    )
    return response
