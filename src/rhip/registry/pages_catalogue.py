"""Portal pages for the dataset catalogue and code systems (Chinese, public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from rhip.registry import api_catalogue, catalogue, codes
from rhip.security.deps import public

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100


@router.get("/registry/datasets", response_class=HTMLResponse, dependencies=[Depends(public())])
def datasets_page(request: Request) -> HTMLResponse:
    """The catalogue: every upload table, grouped by category, with its real-time badge and business key."""
    groups: dict[str, list[catalogue.Dataset]] = {}
    for d in catalogue.datasets():
        groups.setdefault(catalogue.CATEGORY_LABELS[d.category], []).append(d)
    context = {
        "groups": groups,
        "realtime": catalogue.realtime_datasets(),
        "total": len(catalogue.datasets()),
        "common_fields": catalogue.COMMON_FIELDS,
        "systems": codes.code_systems(),
    }
    return request.app.state.templates.TemplateResponse(request, "registry/catalogue_datasets.html", context)  # type: ignore[no-any-return]


@router.get("/registry/datasets/{name}", response_class=HTMLResponse, dependencies=[Depends(public())])
def dataset_page(request: Request, name: str) -> HTMLResponse:
    """One table: its fields with types, required flags, code bindings and ranges; its key and links."""
    dataset = catalogue.get(name)
    context = {
        "d": dataset,
        "fields": [(api_catalogue.field_read(f), catalogue.range_text(f)) for f in dataset.fields],
        "common": set(catalogue.COMMON_FIELD_NAMES),
        "systems": codes.code_systems(),
        "category_label": catalogue.CATEGORY_LABELS[dataset.category],
        "labels": {d.name: d.label for d in catalogue.datasets()},
    }
    return request.app.state.templates.TemplateResponse(request, "registry/catalogue_dataset.html", context)  # type: ignore[no-any-return]


@router.get(
    "/registry/codesystems/{system_id}", response_class=HTMLResponse, dependencies=[Depends(public())]
)
def code_system_page(
    request: Request,
    system_id: str,
    q: Annotated[str | None, Query(max_length=50)] = None,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> HTMLResponse:
    """One code system's codes, searchable (ICD-10 by code or name) and paginated."""
    view = api_catalogue.code_page(system_id, q, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    pages = max(1, -(-view.total // PAGE_SIZE))
    context = {"cs": view, "page": page, "pages": pages, "q": view.q or ""}
    name = "registry/catalogue_codesystem.html"
    return request.app.state.templates.TemplateResponse(request, name, context)  # type: ignore[no-any-return]
