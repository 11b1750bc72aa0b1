"""The bulletin in the portal: the month's issue as a page, and its PDF and XLSX downloads."""

from __future__ import annotations

import hashlib
import os
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

import rhip
from rhip import months
from rhip.bulletin import render, service
from rhip.bulletin.sections import Bulletin
from rhip.clock import local_now
from rhip.config import Settings
from rhip.errors import NotFound
from rhip.lake.store import Lake
from rhip.quality.figures import months_with_data
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role

router = APIRouter(include_in_schema=False)
READERS = (Role.manager, Role.admin, Role.auditor, Role.uploader)
MonthQ = Annotated[str | None, Query(pattern=months.PATTERN)]
LayoutQ = Annotated[str | None, Query(pattern=r"^(2018|2020|2022|2025)$")]
MEDIA = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _months(session: Session) -> dict[str, int]:
    """Upload days per month (the bulletin's figures come from the uploads)."""
    with session.begin():
        return months_with_data(session)


def _build(request: Request, session: Session, month: str, layout: str | None = None) -> Bulletin:
    settings: Settings = request.app.state.settings
    with session.begin():
        return service.build(session=session, lake=Lake.from_settings(settings), month=month, layout=layout)


@router.get("/bulletin", response_class=HTMLResponse, dependencies=[Depends(require(*READERS))])
def bulletin_page(
    request: Request, session: SessionDep, month: MonthQ = None, layout: LayoutQ = None
) -> HTMLResponse:
    """信息化简报：本月各栏目（与 PDF 同版式，可按 2018/2020/2022/2025 年版式），附 PDF、Excel 下载。"""
    available = _months(session)
    m = months.check(month) if month else months.latest(available, months.previous(local_now().date()))
    b = _build(request, session, m, layout)
    page = render.html(b)
    options = "".join(
        f'<option value="{x}"{" selected" if x == m else ""}>{x}</option>'
        for x in sorted({*available, m})[::-1]
    )
    links = (
        '<nav style="text-align:center;margin:1em">'
        '<form method="get" action="/bulletin" class="month-picker">'
        f'<label>统计月份 <select name="month">{options}</select></label> <button type="submit">查看</button>'
        f'</form><a href="/bulletin/{m}.pdf">下载 PDF</a> · '
        f'<a href="/bulletin/{m}.xlsx">下载 Excel</a> · <a href="/quality?month={m}">数据质控</a> · '
        f'<a href="/">返回门户</a></nav>'
    )
    return HTMLResponse(page.replace("<body>", "<body>" + links, 1))


CACHE_KEEP = 64  # files kept in the cache folder (a few formats and layouts of the last years' issues)


def _cached_file(settings: Settings, b: Bulletin, fmt: str) -> bytes:
    """The rendered file, built once per month, content and rhip version (a PDF costs seconds of CPU;
    any uploader may ask for it). The key hashes the issue's figures, so new data makes a new file."""
    digest = hashlib.sha256(f"{rhip.__version__}|{fmt}|{b!r}".encode()).hexdigest()[:24]
    folder = settings.data_dir / "cache" / "bulletin"
    path = folder / f"{b.month}-{digest}.{fmt}"
    if path.exists():
        return path.read_bytes()
    data = render.pdf(b) if fmt == "pdf" else render.xlsx(b)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
    old = sorted(folder.glob("*.*"), key=lambda p: p.stat().st_mtime)[:-CACHE_KEEP]
    for p in old:
        p.unlink(missing_ok=True)
    return data


@router.get("/bulletin/{month}.{fmt}", dependencies=[Depends(require(*READERS))])
def bulletin_file(
    month: str, fmt: str, request: Request, session: SessionDep, layout: LayoutQ = None
) -> Response:
    """The month's issue as PDF or XLSX."""
    if fmt not in MEDIA:
        raise NotFound(f"没有这种格式的简报：{fmt}", code="bad-format")
    month = months.check(month)
    b = _build(request, session, month, layout)
    data = _cached_file(request.app.state.settings, b, fmt)
    name = f"{render.file_stem(b)}.{fmt}"
    from urllib.parse import quote

    return Response(
        data,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )
