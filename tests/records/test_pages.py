"""Records pages: the doctor's browser (refused, code, emergency, reminders first) and 我的健康档案."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.records.conftest import City

H = Callable[..., dict[str, str]]


def test_doctor_refused_then_emergency(client: TestClient, city: City, as_: H) -> None:
    doc = as_("doctor", city.org_c, "dr-page")
    r = client.get(f"/records/person/{city.person}", headers=doc)
    assert r.status_code == 403 and "未获患者授权" in r.text and "紧急调阅" in r.text
    assert city.org_a not in r.text
    short = client.post(
        f"/records/person/{city.person}/emergency", data={"reason": "急"}, headers=doc, follow_redirects=False
    )
    assert short.status_code == 303 and "msg=" in short.headers["location"]
    ok = client.post(
        f"/records/person/{city.person}/emergency",
        data={"reason": "车祸昏迷，家属不在场"},
        headers=doc,
        follow_redirects=True,
    )
    assert ok.status_code == 200 and "紧急调阅（第" in ok.text
    page = ok.text
    assert page.index('id="reminders"') < page.index('id="timeline"')
    assert "智能提示" in page and "高血压患者随访已逾期" in page
    assert city.org_a in page and city.org_b in page


def test_search_by_id_number_and_own_institution(client: TestClient, city: City, as_: H) -> None:
    doc = as_("doctor", city.org_b, "dr-b")
    r = client.get("/records", params={"q": city.id_number}, headers=doc, follow_redirects=True)
    assert r.status_code == 200 and "本机构记录" in r.text
    assert city.id_number not in r.text  # masked
    assert client.get("/records", headers=as_("manager")).status_code == 403


def test_my_record_page_consents_code_and_measurement(client: TestClient, city: City, as_: H) -> None:
    me = as_("resident", None, city.id_number)
    page = client.get("/records/me", headers=me)
    assert page.status_code == 200 and "谁看过我的档案" in page.text and "检验检查报告" in page.text
    r = client.post("/records/me/code", headers=me, follow_redirects=True)
    assert "一次性授权码：" in r.text
    r = client.post(
        "/records/me/measurements",
        data={"kind": "weight", "value": "71.5"},
        headers=me,
        follow_redirects=True,
    )
    assert 'role="img"' in r.text and "体重" in r.text
    r = client.post(
        "/records/me/consents",
        data={"institution_code": city.org_c, "days": "3"},
        headers=me,
        follow_redirects=True,
    )
    assert "已授权" in r.text
    bad = client.post(
        "/records/me/consents",
        data={"institution_code": "NOPE", "days": "3"},
        headers=me,
        follow_redirects=True,
    )
    assert bad.status_code == 200 and "已授权 NOPE" not in bad.text
