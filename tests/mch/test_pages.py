"""MCH pages: the register and visit forms through the services (refusals shown with the rule), the colour
badge, the high-risk list, the dashboard with its chart and table."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from fastapi.testclient import TestClient

from tests.mch.conftest import unique, woman_id

Auth = Callable[..., dict[str, str]]


def test_register_visit_and_regrade_through_the_forms(client: TestClient, auth: Auth) -> None:
    doc = auth("doctor", institution="F320102")
    r = client.get("/mch", headers=doc)
    assert r.status_code == 200 and "孕产妇建册" in r.text and "<script>" not in r.text
    form = {
        "local_id": unique("PG"),
        "id_number": woman_id(),
        "name": "孙芳",
        "registered_on": "2025-04-01",
        "gestational_week": "10",
        "colour": "yellow",
    }
    r = client.post("/mch/pregnancies", data=form, headers=doc, follow_redirects=False)
    assert r.status_code == 303
    url = r.headers["location"].split("?")[0]
    page = client.get(url, headers=doc).text
    assert 'class="mch-badge mch-yellow"' in page and "黄色·一般风险" in page
    r = client.post(f"{url}/visits", data={"visit_date": "2025-03-01"}, headers=doc, follow_redirects=False)
    assert "早于建册日期" in unquote(r.headers["location"])
    r = client.post(f"{url}/visits", data={"visit_date": "2025-04-01"}, headers=doc, follow_redirects=True)
    assert "已登记初诊" in r.text
    r = client.post(
        f"{url}/assessments",
        data={"assessed_on": "2025-04-10", "colour": "red", "purple": "true", "case_owner": "郑医生"},
        headers=doc,
        follow_redirects=True,
    )
    assert "mch-badge mch-red" in r.text and "mch-badge mch-purple" in r.text and "专案随访" in r.text
    r = client.post(
        "/mch/pregnancies", data={**form, "local_id": unique("PG")}, headers=doc, follow_redirects=True
    )
    assert "在管的孕产期保健册" in r.text


def test_child_form_and_page(client: TestClient, auth: Auth) -> None:
    doc = auth("doctor", institution="F320102")
    form = {
        "local_id": unique("CPG"),
        "name": "周宝",
        "sex": "1",
        "birth_date": "2025-05-01",
        "registered_on": "2025-05-03",
        "mother_id_number": woman_id(),
    }
    r = client.post("/mch/children", data=form, headers=doc, follow_redirects=True)
    assert r.status_code == 200 and "尚未关联（档案挂在母亲名下）" in r.text
    cid = re.search(r"/mch/children/(\d+)/visits", r.text)
    assert cid
    for day, w in (("2025-05-08", "3.6"), ("2025-06-02", "4.6")):
        r = client.post(
            f"/mch/children/{cid.group(1)}/visits",
            data={"visit_date": day, "weight_kg": w},
            headers=doc,
            follow_redirects=True,
        )
    assert 'role="img"' in r.text and "体重" in r.text


def test_high_risk_and_dashboard_pages(client: TestClient, auth: Auth) -> None:
    r = client.get("/mch/high-risk", headers=auth("doctor", institution="F320102"))
    assert r.status_code == 200 and "高危孕产妇专案管理" in r.text
    r = client.get("/mch/dashboard?year=2012", headers=auth("manager"))
    assert r.status_code == 200
    assert "2011-10-01 至 2012-09-30" in r.text and "早孕建册率" in r.text and "ANC.IND.01" in r.text
    assert 'role="img"' in r.text and 'id="monthly"' in r.text
    assert client.get("/mch/dashboard", headers=auth("resident")).status_code == 403
    assert client.get("/mch/dashboard?district=320106&year=2012", headers=auth("auditor")).status_code == 200
