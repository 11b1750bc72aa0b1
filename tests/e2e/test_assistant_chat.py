"""宁宁's chat page in a real browser on a phone-sized screen: an answer with its source, the crisis."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_chat_on_a_phone(server: str, browser, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("response", lambda r: errors.append(r.url) if r.status >= 400 else None)
    page.goto(f"{server}/assistant")
    page.fill("#message", "醫保怎麼報銷")
    page.click("button[type=submit]")
    bot = page.locator("li.msg.bot").first
    bot.wait_for(timeout=20_000)
    assert "医保" in bot.inner_text() and "来源" in bot.inner_text()
    page.fill("#message", "我真的不想活了")
    page.press("#message", "Enter")
    crisis = page.locator("li.msg.bot.crisis")
    crisis.wait_for(timeout=20_000)
    assert "12356" in crisis.inner_text()
    page.screenshot(path=str(artifacts / "assistant-chat.png"), full_page=True)
    assert not errors, errors
    context.close()
