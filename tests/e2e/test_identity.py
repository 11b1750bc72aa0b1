"""The identity review page in a real browser: an uncertain pair side by side with the differing fields
highlighted, merged by a data steward, then the merge undone from the person page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rhip.security.service import issue_token
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e
SECRET = "e2e-identity-secret-key-0123456789-abcdefghijklmn"


@pytest.fixture(scope="module")
def identity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rhip serve` with a known signing key."""
    with serve(tmp_path_factory.mktemp("e2e-identity"), RHIP_SECRET_KEY=SECRET) as base:
        yield base


def test_steward_merges_and_unmerges_in_the_browser(identity_server: str, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    admin = {"Authorization": f"Bearer {issue_token(SECRET, subject='e2e', role='admin')}"}
    first = {
        "institution_code": "H020",
        "local_id": "E2E-1",
        "name": "诸葛明远",
        "birth_date": "1958-04-12",
        "sex": "1",
        "phone": "13913900001",
        "district": "320102",
    }
    second = {
        **first,
        "institution_code": "H029",
        "local_id": "E2E-2",
        "phone": "13800002222",
        "district": "320115",
    }
    a = httpx.post(f"{identity_server}/api/v1/identity/link", json=first, headers=admin)
    b = httpx.post(f"{identity_server}/api/v1/identity/link", json=second, headers=admin)
    assert a.status_code == 200 and b.status_code == 200, b.text
    assert b.json()["band"] == "review", b.json()
    token = issue_token(SECRET, subject="steward", role="manager")
    page.context.add_cookies([{"name": "rhip_token", "value": token, "url": identity_server}])

    page.goto(f"{identity_server}/identity")
    assert page.get_by_role("heading", name="主索引（EMPI）").is_visible()
    review = page.locator("section.review").first
    differing = review.locator("tr.differs th")
    assert {t.split()[0] for t in differing.all_inner_texts()} == {
        "联系电话",
        "现住址行政区划",
    }
    assert review.locator("tr.differs mark").count() == 4  # both sides of the two differing fields
    assert "13913900001" in review.inner_text() and "13800002222" in review.inner_text()
    page.screenshot(path=str(artifacts / "identity-review.png"), full_page=True)
    review.get_by_role("button", name="是同一人，合并").click()
    page.wait_for_url("**/identity?msg=*")
    assert "已合并" in page.get_by_role("status").inner_text()

    page.goto(f"{identity_server}/identity/persons/{a.json()['person_id']}")
    rows = page.locator("table").first.locator("tbody tr")
    assert rows.count() == 2
    page.get_by_role("button", name="撤销最近一次合并").click()
    page.wait_for_url(f"**/identity/persons/{b.json()['person_id']}?msg=*")
    assert "已撤销合并" in page.get_by_role("status").inner_text()
    assert page.locator("table").first.locator("tbody tr").count() == 1
