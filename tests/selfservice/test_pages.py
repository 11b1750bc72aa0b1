"""Self-service pages through the app: the map, the city view, the hospital dashboard, the card page."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date

from fastapi.testclient import TestClient

from rhip.db.engine import Database
from rhip.selfservice import citymap, geo
from rhip.telemed import service as telemed
from tests.booking.conftest import new_person
from tests.selfservice.conftest import HOSPITAL


def test_district_boundaries_come_from_the_installed_package() -> None:
    ds = geo.districts()
    assert [d.code for d in ds] == [
        "320102", "320104", "320105", "320106", "320111", "320113",
        "320114", "320115", "320116", "320117", "320118",
    ]  # fmt: skip
    for d in ds:  # Nanjing lies within 118.3–119.3 E, 31.2–32.7 N (WGS-84 / CGCS2000, not shifted)
        for poly in d.polygons:
            for x, y in poly[0]:
                assert 118.2 < x < 119.4 and 31.1 < y < 32.7, d.name
    assert geo.classes([0, 0, 0]) == [] and geo.colour(0, [5]) == geo.PALETTE[0]
    assert geo.classes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])[-1] == 10


def test_map_page_shades_every_district(client: TestClient) -> None:
    r = client.get("/map")
    assert r.status_code == 200
    html = r.text
    assert "示意图" in html and "天地图" in html and "江北新区" in html
    assert len(re.findall(r'<path class="district"', html)) == 11
    assert "<script>" not in html and " onclick=" not in html
    assert 'id="d-320192"' in html  # 江北新区's institutions are listed
    assert 'id="district-values"' in html and "远程医疗接入机构数" in html and "当月发卡量" in html
    assert html.count('<svg class="chart"') + html.count("<svg") >= 2  # the map and the chart beside it
    for figure in ("terminals", "bookings", "cards", "telemed", "nonsense"):
        assert client.get(f"/map?figure={figure}&month=2025-03").status_code == 200
    assert client.get("/map?month=bad").status_code == 422


def test_dashboard_and_city_view(
    client: TestClient, auth: Callable[..., dict[str, str]], terminal: Callable[..., tuple[str, str]]
) -> None:
    code, _key = terminal(HOSPITAL)
    r = client.get("/selfservice/terminals", headers=auth("uploader", institution=HOSPITAL))
    assert r.status_code == 200 and code in r.text and "<svg" in r.text
    r = client.get("/selfservice", headers=auth("manager"))
    assert r.status_code == 200 and "开卡量" in r.text and "人工窗口" in r.text
    assert client.get("/selfservice", headers=auth("resident", subject=new_person())).status_code == 403
    assert client.get("/selfservice/kiosk").status_code == 200


def test_card_page_claims_and_draws_the_qr(client: TestClient, auth: Callable[..., dict[str, str]]) -> None:
    pid = new_person()
    me = auth("resident", subject=pid)
    r = client.get("/selfservice/card", headers=me)
    assert r.status_code == 200 and "领取电子健康卡" in r.text
    r = client.post("/selfservice/card", data={"name": "李四"}, headers=me, follow_redirects=False)
    assert r.status_code == 303
    r = client.get("/selfservice/card", headers=me)
    assert r.status_code == 200 and 'class="segno"' in r.text and "并非国家电子健康卡标准码制" in r.text
    assert pid not in r.text  # masked
    svg = client.get("/selfservice/card/dynamic.svg", headers=me)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["cache-control"] == "no-store" and "<path" in svg.text


def _table_cell(html: str, district: str, column: int) -> str:
    """The text of one cell of the district table beside the map (column 0 is the first figure)."""
    table = html[html.index('id="district-values"') :]
    row = re.search(rf">{district}</a></td>(.*?)</tr>", table)
    assert row is not None, district
    return re.findall(r'<td class="num">([^<]*)</td>', row.group(1))[column]


def test_map_shows_telemedicine_coverage_by_district(client: TestClient, db: Database) -> None:
    month = "2031-05"  # connections dated in the future: no other test's month sees them
    site, late = f"测试卫生服务站-{uuid.uuid4().hex[:6]}", f"测试卫生服务站-{uuid.uuid4().hex[:6]}"
    with db.session() as s, s.begin():
        before = citymap.telemed_by_district(s, month=month).get("高淳区", 0)
        for centre_code in ("ecg", "imaging"):  # one site on two centres counts once
            telemed.connect(s, centre_code=centre_code, connected_on=date(2031, 5, 3), site_name=site,
                            district="高淳区", category="社区")  # fmt: skip
        telemed.connect(s, centre_code="ecg", connected_on=date(2031, 6, 1), site_name=late,
                        district="高淳区", category="社区")  # fmt: skip
        after = citymap.telemed_by_district(s, month=month).get("高淳区", 0)
        june = citymap.telemed_by_district(s, month="2031-06").get("高淳区", 0)
    assert after == before + 1 and june == after + 1
    r = client.get(f"/map?figure=telemed&month={month}")
    assert r.status_code == 200 and "远程医疗接入机构数（2031-05）" in r.text
    columns = list(citymap.TABLE)
    assert _table_cell(r.text, "高淳区", columns.index("telemed")) == f"{after:,}"
    # the map's own description states the same value for the district
    desc = re.search(r'<desc id="map-desc">(.*?)</desc>', r.text)
    assert desc is not None and f"高淳区 {after}" in desc.group(1).split("；")
