"""The bulletin framework: providers found without naming them, sections checked, HTML/PDF/XLSX rendered."""

from __future__ import annotations

import io
import re
import time
import zlib
from pathlib import Path

import pytest
from openpyxl import load_workbook

from rhip.bulletin import providers, render, service
from rhip.bulletin.sections import parse_section
from rhip.errors import Invalid
from rhip.lake.store import Lake

FAKE = "tests.bulletin.fake_provider"


def _pdf_text(data: bytes) -> str:
    """Every (inflated) stream of a PDF as Latin-1 text, to look for the embedded font's name."""
    out = [data.decode("latin-1")]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            out.append(zlib.decompress(m.group(1)).decode("latin-1"))
        except zlib.error:
            continue
    return "".join(out)


def test_masthead_numbers_follow_the_seeds() -> None:
    b = service.masthead("2025-02")
    assert (b.issue_label, b.published_on) == ("2025年第3期（总第157期）", "2025年3月25日")
    assert service.masthead("2025-03").issue_label == "2025年第4期（总第158期）"
    assert service.masthead("2024-12").issue_label == "2025年第1期（总第155期）"
    with pytest.raises(Invalid):
        service.masthead("2025-13")


def test_providers_are_discovered_not_listed() -> None:
    assert "rhip.quality.stats" in providers.provider_modules()


def test_malformed_section_is_refused() -> None:
    from tests.bulletin import fake_provider

    with pytest.raises(Invalid, match="第 1 行"):
        parse_section(fake_provider.broken_sections(session=None, lake=None, month="2025-03")[0], source="x")


def test_sections_sorted_and_rendered(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b = service.build(
        session=session, lake=Lake(tmp_path / "lake"), month="2025-03", modules=[FAKE], strict=True
    )
    assert [s.key for s in b.sections] == ["fake.table", "fake.late"]
    page = render.html(b)
    assert "南京卫生信息化简报" in page and "2025年第4期（总第158期）" in page
    assert 'colspan="2">渠道' in page and "89.10%" in page and "12.50" in page
    paths = render.write(b, tmp_path / "out")
    assert paths["pdf"].read_bytes().startswith(b"%PDF")
    assert "WenQuanYi" in _pdf_text(paths["pdf"].read_bytes())
    wb = load_workbook(io.BytesIO(paths["xlsx"].read_bytes()))
    ws = wb["预约"]
    assert ws["A1"].value == "预约挂号服务统计"
    assert ws["B2"].value == "渠道" and ws["B3"].value == "在线"
    assert ws["B4"].value == 6778 and ws["B4"].data_type == "n"
    assert ws["E4"].value == pytest.approx(0.891) and ws["E4"].number_format == "0.00%"
    assert ws["E5"].value == "/"


def test_failing_provider_is_noted_not_fatal(session, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.bulletin import fake_provider

    monkeypatch.setattr(fake_provider, "bulletin_sections", fake_provider.broken_sections)
    b = service.build(session=session, lake=Lake(tmp_path), month="2025-03", modules=[FAKE])
    assert b.sections == [] and len(b.errors) == 1
    assert "以下栏目本期暂缺" in render.html(b)


def test_full_bulletin_renders_quickly(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with session.begin():
        b = service.build(session=session, lake=Lake(tmp_path / "lake"), month="2025-03", strict=True)
    paths = render.write(b, tmp_path / "out")
    elapsed = time.perf_counter() - started
    # other domains' sections (booking, hotline, ...) come before quality's when the shared test database
    # holds their month's data from earlier tests; quality's three open its part, in order
    keys = [s.key for s in b.sections if s.key.startswith("quality.")]
    assert keys[:3] == ["quality.summary", "quality.districts", "quality.hospitals"]
    assert [s.order for s in b.sections] == sorted(s.order for s in b.sections)
    assert set(paths) == {"html", "pdf", "xlsx"}
    wb = load_workbook(paths["xlsx"])
    assert "数据采集情况（区）" in wb.sheetnames and "数据采集情况（医院）" in wb.sheetnames
    ws = wb["数据采集情况（区）"]
    assert [c.value for c in ws[3]][:8] == [
        None,
        None,
        None,
        None,
        "人次",
        "收入（千元）",
        "人次",
        "住院收入（千元）",
    ]
    assert ws.max_row == 3 + 12  # two header rows under the title, then the 12 districts
    assert elapsed < 10, elapsed
