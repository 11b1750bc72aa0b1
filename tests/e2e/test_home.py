"""The portal in a real browser: Chinese text, rendered with a CJK font, links that work."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
CJK_FAMILIES = ("wenquanyi", "noto sans cjk", "noto serif cjk", "droid sans fallback", "ar pl")


def _platform_fonts(page, selector: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """The fonts Chromium actually used to draw a node's text (DevTools CSS.getPlatformFontsForNode)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, f"no node for {selector}"
    return list(cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"])


def test_home_page_renders_chinese_with_cjk_font(server: str, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/")
    assert page.title().startswith("首页")
    heading = page.locator("h1")
    assert heading.inner_text() == "区域全民健康信息平台"
    fonts = _platform_fonts(page, "h1")
    used = {str(f["familyName"]).lower(): int(f["glyphCount"]) for f in fonts}  # type: ignore[call-overload]
    cjk = {name: n for name, n in used.items() if name.startswith(CJK_FAMILIES)}
    assert cjk and sum(cjk.values()) >= len("区域全民健康信息平台"), f"no CJK font drew the heading: {used}"
    shot = artifacts / "home.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_home_links_to_registry_search(server: str, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/")
    page.get_by_role("link", name="机构注册库").click()
    page.wait_for_url("**/registry/institutions**")
    page.locator("input[name=q]").fill("南京军区南京总医院")
    page.locator("input[name=q]").press("Enter")
    page.wait_for_load_state("networkidle")
    assert "东部战区总医院" in page.locator("main").inner_text()
    page.screenshot(path=str(artifacts / "registry-search.png"), full_page=True)
