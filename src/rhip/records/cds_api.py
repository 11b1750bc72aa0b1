"""CDS Hooks 2.0 service (https://cds-hooks.hl7.org/2.0/): discovery at GET /cds-services, and the
`patient-view` and `order-select` hooks answering cards with the platform's smart reminders. The EHR
calls with a clinician's bearer token; `context.patientId` is the EMPI person id. Consent applies as for
any view."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from rhip.errors import Invalid, NotFound
from rhip.records import reminders
from rhip.records.viewing import view
from rhip.security.deps import SessionDep, public, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(tags=["cds-hooks"])
Clinician = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor))]
SOURCE = {
    "label": "南京区域全民健康信息平台 · 智能提示",
    "topic": {"code": "rhip-reminders", "display": "智能提示"},
}

SERVICES: dict[str, dict[str, Any]] = {
    "rhip-patient-view": {
        "hook": "patient-view",
        "id": "rhip-patient-view",
        "title": "档案调阅智能提示",
        "description": "打开患者档案时：近期已做检查检验（结果互认）、过敏史、慢病随访逾期、近期异常结果。",
        "usageRequirements": "需经患者授权（或本机构患者）；context.patientId 为平台主索引号。",
    },
    "rhip-order-select": {
        "hook": "order-select",
        "id": "rhip-order-select",
        "title": "重复检查检验提醒",
        "description": "选择医嘱时：同一项目在互认期内已在任一机构做过则提醒。",
        "usageRequirements": "draftOrders 为 ServiceRequest 的 Bundle。",
    },
}


class HookRequest(BaseModel):
    """A CDS Hooks request (the fields this service reads)."""

    hook: str = Field(max_length=64)
    hookInstance: str = Field(max_length=128)
    context: dict[str, Any]
    fhirServer: str | None = Field(default=None, max_length=2000)
    prefetch: dict[str, Any] | None = None


@router.get("/cds-services", dependencies=[Depends(public())])
def discovery() -> dict[str, Any]:
    """The services this CDS service offers."""
    return {"services": list(SERVICES.values())}


def _orders(context: dict[str, Any]) -> list[reminders.Order]:
    bundle = context.get("draftOrders") or {}
    if not isinstance(bundle, dict):
        raise Invalid("draftOrders 应为 FHIR Bundle", code="cds-bad-orders")
    out = []
    for entry in (bundle.get("entry") or [])[:100]:
        res = (entry or {}).get("resource") or {}
        cc = res.get("code") or {}
        codings = cc.get("coding") or [{}]
        c0 = codings[0] if isinstance(codings, list) and codings else {}
        name = str(cc.get("text") or c0.get("display") or c0.get("code") or "")[:200]
        if name:
            out.append(reminders.Order(name, (str(c0.get("code"))[:50] if c0.get("code") else None)))
    return out


def _card(r: reminders.Reminder) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "summary": r.summary[:140],
        "detail": r.detail,
        "indicator": r.indicator,
        "source": SOURCE,
    }


@router.post("/cds-services/{service_id}")
def call_service(
    service_id: Annotated[str, Path(max_length=64)],
    body: HookRequest,
    session: SessionDep,
    principal: Clinician,
) -> dict[str, Any]:
    """Answer one hook with cards (an empty list when there is nothing to say)."""
    svc = SERVICES.get(service_id)
    if svc is None:
        raise NotFound(f"没有这个 CDS 服务：{service_id}", code="cds-unknown-service")
    if body.hook != svc["hook"]:
        raise Invalid(f"服务 {service_id} 只响应 {svc['hook']}", code="cds-wrong-hook")
    person_id = str(body.context.get("patientId") or "")[:40]
    if not person_id:
        raise Invalid("context.patientId 必填", code="cds-no-patient")
    orders = _orders(body.context) if body.hook == "order-select" else []
    _access, found = view(
        session,
        principal=principal,
        person_id=person_id,
        action="cds-" + body.hook,
        detail=body.hookInstance,
        read=lambda access: reminders.compute(session, access=access, orders=orders),
    )
    if body.hook == "order-select":
        found = [r for r in found if r.category in ("repeat", "allergy")]
    return {"cards": [_card(r) for r in found]}
