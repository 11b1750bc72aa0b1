"""Registry pages (Chinese): institutions with search and filters, one institution, the districts."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from rhip.registry import data, service
from rhip.security.deps import SessionDep, public

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
SessionDep = SessionDep


def _blank_to_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


@router.get("/registry/institutions", response_class=HTMLResponse, dependencies=[Depends(public())])
def institutions_page(
    request: Request,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    district: Annotated[str | None, Query(max_length=32)] = None,
    level: Annotated[str | None, Query(max_length=8)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    city: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Search institutions by name, alias or code; filter by district, level and kind."""
    q, district, level, kind, city = (_blank_to_none(v) for v in (q, district, level, kind, city))
    items, total = service.get_all_institutions(
        session, q=q, district=district, level=level, kind=kind, city=city, limit=PAGE_SIZE, offset=offset
    )
    filters = {"q": q, "district": district, "level": level, "kind": kind, "city": city}
    params = {k: v for k, v in filters.items() if v}

    def link(new_offset: int) -> str:
        return "/registry/institutions?" + urlencode({**params, "offset": new_offset})

    selected_district = data.district_by(district) if district else None
    context = {
        "items": items,
        "total": total,
        "q": q or "",
        "district": selected_district.code if selected_district else "",
        "level": level or "",
        "kind": kind or "",
        "city": city or "",
        "districts": service.get_all_districts(session),
        "levels": data.LEVELS,
        "kinds": data.KIND_LABELS,
        "grouped": not q,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "prev_link": link(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
        "next_link": link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "registry/institutions.html", context
    )
    return response


@router.get("/registry/institutions/{code}", response_class=HTMLResponse, dependencies=[Depends(public())])
def institution_page(request: Request, code: str, session: SessionDep) -> HTMLResponse:
    """One institution: names, level, ownership, district, parent and branches."""
    inst = service.get_institution(session, code=code)
    parent = service.get_institution(session, code=inst.parent_code) if inst.parent_code else None
    context = {
        "inst": inst,
        "kind_label": data.KIND_LABELS.get(inst.kind, inst.kind),
        "upload_label": data.UPLOAD_ROUTE_LABELS.get(inst.upload_route, inst.upload_route),
        "parent": parent,
        "branches": service.get_branches(session, code=inst.code),
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "registry/institution.html", context
    )
    return response


@router.get("/registry/districts", response_class=HTMLResponse, dependencies=[Depends(public())])
def districts_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The 12 districts with their hospitals and community health centres counted."""
    counts = service.district_counts(session)
    rows: list[dict[str, Any]] = []
    for d in service.get_all_districts(session):
        c = counts.get(d.code, {})
        rows.append(
            {
                "district": d,
                "hospitals": c.get("hospital", 0),
                "mch": c.get("mch", 0),
                "tertiary": c.get("tertiary", 0),
                "centres": c.get("community_health_centre", 0),
                "total": c.get("total", 0),
            }
        )
    context = {
        "rows": rows,
        "totals": {
            k: sum(int(r[k]) for r in rows) for k in ("hospitals", "mch", "tertiary", "centres", "total")
        },
        "metro": service.get_all_metro_cities(session),
        "metro_counts": service.metro_city_counts(session),
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "registry/districts.html", context
    )
    return response
