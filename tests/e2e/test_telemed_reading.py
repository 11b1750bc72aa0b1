# ruff: noqa: E501
"""The expert's reading page in a real browser: a study sent to rhip (STOW-RS) lands in the real Orthanc that
`rhip serve` runs, the hub's radiologist opens it from the worklist, sees the series previews (loaded through
rhip, nothing from another origin), accepts it and writes the report."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.security.service import issue_token
from tests.e2e.conftest import serve

SECRET = "e2e-telemed-secret-key-0123456789-abcdefghijklmnopq"
UPLOADER = "C32011501"
HUB = "H020"


@pytest.fixture(scope="module")
def telemed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("e2e-telemed")
    settings = Settings(data_dir=data, secret_key=SECRET)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    from rhip.registry import service as registry
    from rhip.telemed import service as svc

    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
        svc.connect(s, centre_code="imaging", institution_code=UPLOADER, connected_on=date(2020, 1, 1))
    db.dispose()
    with serve(data, RHIP_SECRET_KEY=SECRET) as base:
        yield base, data


def _upload(base: str) -> int:
    from rhip.telemed import imaging

    ds = imaging.make_study(
        institution="江宁区东山社区卫生服务中心",
        modality="CT",
        instances=4,
        patient_id="320102198001011238",
        patient_name="周^九",
        sex="1",
        at=datetime.now(UTC),
    )
    b = uuid.uuid4().hex
    body = (
        b"".join(
            b"--"
            + b.encode()
            + b"\r\nContent-Type: application/dicom\r\n\r\n"
            + imaging.to_bytes(d)
            + b"\r\n"
            for d in ds
        )
        + b"--"
        + b.encode()
        + b"--\r\n"
    )
    token = issue_token(SECRET, subject="modality", role="uploader", institution_code=UPLOADER)
    r = httpx.post(
        f"{base}/api/v1/telemed/imaging/studies",
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={b}',
        },
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return int(r.json()[0]["request_id"])


@pytest.mark.e2e
def test_reading_page_previews_and_report(telemed_server: tuple[str, Path], page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    base, _data = telemed_server
    rid = _upload(base)
    token = issue_token(SECRET, subject="radiologist", role="doctor", institution_code=HUB, name="吴医生")
    page.context.add_cookies([{"name": "rhip_token", "value": token, "url": base}])
    seen: list[str] = []
    page.on("request", lambda req: seen.append(req.url))
    page.goto(f"{base}/telemed/centres/imaging/worklist")
    assert "专家工作列表" in page.content()
    page.click(f'a[href="/telemed/read/{rid}"]')
    page.wait_for_selector("#reading-title")
    previews = page.locator("figure.preview img")
    assert previews.count() == 2  # two series of two images each
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure.preview img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.click('button:text-is("接收")')
    page.wait_for_selector("#report-form")
    page.fill("textarea[name=findings]", "右肺中叶见一磨玻璃结节，直径约 5 mm。")
    page.fill("textarea[name=conclusion]", "右肺中叶磨玻璃结节，建议 6 个月后复查。")
    page.click("#report-form button")
    page.wait_for_selector(".report")
    text = page.content()
    assert "建议 6 个月后复查" in text and "已报告" in text and "吴医生" in text
    page.screenshot(path=str(artifacts / "telemed-reading.png"), full_page=True)
    assert seen and all(u.startswith(base) for u in seen), [u for u in seen if not u.startswith(base)]
