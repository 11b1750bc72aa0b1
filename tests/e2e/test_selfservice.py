"""Self-service in a real browser: the kiosk reads an electronic health card and pays and prints; the
map draws Nanjing's district shapes with no network beyond the portal itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from rhip.registry.idnumber import make_id
from rhip.security.service import issue_token
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e
SECRET = "e2e-selfservice-secret-key-0123456789-abcdefghijkl"


@pytest.fixture(scope="module")
def ss_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rhip serve` with a known signing key (the test issues tokens for staff and a resident)."""
    with serve(tmp_path_factory.mktemp("e2e-selfservice"), RHIP_SECRET_KEY=SECRET) as base:
        yield base


def _bearer(role: str, **kw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, role=role, **kw)}"}


def _offline(page, base: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Refuse every request that leaves the portal; returns the list of refused URLs."""
    refused: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        if r.request.url.startswith(base):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return refused


def test_kiosk_reads_the_card_pays_and_prints(ss_server: str, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    staff = _bearer("uploader", subject="it", institution_code="H020")
    r = httpx.post(
        f"{ss_server}/api/v1/selfservice/terminals",
        json={"institution_code": "H020", "code": "TH020-E2E", "location": "门诊大厅"},
        headers=staff,
    )
    assert r.status_code == 201, r.text
    key = httpx.post(f"{ss_server}/api/v1/selfservice/terminals/TH020-E2E/key", headers=staff).json()["key"]
    pid = make_id("320106", date(1980, 5, 17), 345)
    card = httpx.post(
        f"{ss_server}/api/v1/cards/health-card",
        json={"name": "王五"},
        headers=_bearer("resident", subject=pid),
    ).json()

    refused = _offline(page, ss_server)
    page.goto(f"{ss_server}/selfservice/kiosk")
    page.fill("#terminal-key", key)
    page.click("#save-key")
    page.wait_for_selector("#kiosk-read:not([hidden])")
    page.fill("#card-code", card["dynamic_code"])
    page.click("#read-card")
    page.wait_for_selector("#kiosk-actions:not([hidden])")
    assert "王五" in page.inner_text("#patient") and pid not in page.inner_text("#patient")
    page.click("#show-register")
    page.wait_for_function("() => document.querySelector('#slots').textContent.length > 0")
    page.click("#show-pay")
    page.fill("#pay-amount", "0.10")
    page.click("#do-pay")
    page.wait_for_function("() => document.querySelector('#kiosk-result').textContent.includes('缴费成功')")
    assert "0.10 元" in page.inner_text("#kiosk-result")
    page.click("#do-print")
    page.wait_for_selector("#receipt:not([hidden])")
    assert "0.10" in page.inner_text("#receipt")
    page.screenshot(path=str(artifacts / "selfservice-kiosk.png"), full_page=True)
    # the same dynamic code read again is refused (replay)
    page.click("#finish")
    page.fill("#card-code", card["dynamic_code"])
    page.click("#read-card")
    page.wait_for_function("() => document.querySelector('#kiosk-result').textContent.includes('读卡失败')")
    assert "重放" in page.inner_text("#kiosk-result")
    assert refused == []
    txns = httpx.get(f"{ss_server}/api/v1/selfservice/transactions", headers={"X-Terminal-Key": key}).json()
    kinds = sorted(t["kind"] for t in txns)
    assert kinds == ["enquiry", "payment", "print"]
    assert next(t for t in txns if t["kind"] == "payment")["amount_fen"] == 10


def test_map_draws_district_shapes_offline(ss_server: str, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    refused = _offline(page, ss_server)
    page.goto(f"{ss_server}/map")
    shapes = page.locator("svg.district-map path.district")
    assert shapes.count() == 11
    for i in range(11):
        box = shapes.nth(i).bounding_box()
        assert box is not None and box["width"] > 5 and box["height"] > 5
    names = set(shapes.evaluate_all("els => els.map(e => e.dataset.name)"))
    assert {"玄武区", "江宁区", "高淳区", "六合区"} <= names
    assert "示意图" in page.inner_text("figure.map")
    page.select_option("select[name=figure]", "terminals")
    page.click("#map-figure button")
    page.wait_for_url("**figure=terminals**")
    assert page.locator("svg.district-map path.district").count() == 11
    page.screenshot(path=str(artifacts / "selfservice-map.png"), full_page=True)
    assert refused == []
