"""MCH pages: the register and visit forms through the services (refusals shown with the rule), the colour
badge, the high-risk list, the dashboard with its chart and table."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from urllib.parse import unquote

from fastapi.testclient import TestClient

from tests.factories import id_sequence
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


def test_every_form_of_the_table_posts_through_its_service(client: TestClient, auth: Auth) -> None:
    """Each entry of forms.FORMS, as a worker of the district: done with its message (on to the new record's
    page for 建册 and 儿童登记); a worker of another district is refused 403 on every record's form; and
    no value of any field answers 5xx."""
    from rhip.mch.forms import FORMS
    from rhip.registry import idnumber

    doc = auth("doctor", institution="F320102")
    sent: dict[str, dict[str, str]] = {}  # the form posted to each route (by its path template)

    def post(url: str, data: dict[str, str]) -> str:
        r = client.post(url, data=data, headers=doc, follow_redirects=False)
        assert r.status_code == 303, (url, r.status_code, r.text[:300])
        sent[re.sub(r"/\d+/", "/{id}/", url)] = data
        return unquote(r.headers["location"])

    woman = {"local_id": unique("PGT"), "id_number": woman_id(), "name": "孙芳", "gestational_week": "12"}
    loc = post("/mch/pregnancies", {**woman, "registered_on": "2025-01-10"})
    assert re.fullmatch(r"/mch/pregnancies/\d+\?msg=已建册", loc), loc
    url = loc.split("?")[0]
    delivery = {"delivered_on": "2025-07-20", "place": "institution", "method": "vaginal", "live_births": "1"}
    said = [
        post(f"{url}/visits", {"visit_date": "2025-01-10", "systolic": "118"}),
        post(f"{url}/assessments", {"assessed_on": "2025-01-12", "colour": "orange", "case_owner": "郑医生"}),
        post(f"{url}/follow-ups", {"followed_on": "2025-02-01", "next_due_on": "2025-03-01"}),
        post(f"{url}/delivery", {**delivery, "institution_code": "H025"}),
        post(f"{url}/postpartum-visits", {"visit_date": "2025-07-25"}),
    ]
    assert [x.split("msg=")[1] for x in said] == [
        "已登记初诊（孕 12 周）",
        "风险评估：橙色",
        "已随访，下次随访 2025-03-01",
        "已登记分娩（孕 39 周，活产 1）",
        "已登记第 1 次产后访视（产后第 5 天）",
    ]
    pid = url.rsplit("/", 1)[1]
    baby = {"local_id": unique("CT"), "name": "孙宝", "sex": "2", "birth_date": "2025-07-20"}
    loc = post("/mch/children", {**baby, "registered_on": "2025-07-22", "pregnancy_id": pid})
    assert re.fullmatch(r"/mch/children/\d+\?msg=已建立儿童保健档案", loc), loc
    curl = loc.split("?")[0]
    own_id = idnumber.make_id("320102", date(2025, 7, 20), id_sequence("2"))
    said = [
        post(f"{curl}/visits", {"visit_date": "2025-07-27", "kind": "newborn", "weight_kg": "3.4"}),
        post(f"{curl}/link", {"id_number": own_id}),
    ]
    assert [x.split("msg=")[1] for x in said] == ["已登记新生儿访视", "已关联儿童本人身份证号码"]

    other = auth("doctor", institution="F320106")  # 鼓楼: the records are managed in 玄武
    ids = {"pregnancy_id": pid, "child_id": curl.rsplit("/", 1)[1]}
    on_record = [f for f in FORMS if f.on]
    assert len(on_record) == 7 and len(FORMS) == 9 and len(sent) == 9
    for form in on_record:
        path = form.path.format(**ids)
        valid = sent[re.sub(r"\{\w+\}", "{id}", form.path)]
        assert client.post(path, data=valid, headers=other).status_code == 403, path
        for value in ("", "x" * 3000, "a\x00b", str(2**64), "-1", "9999-99-99", "<script>"):
            data = dict.fromkeys(form.fields.model_fields, value)
            r = client.post(path, data=data, headers=doc, follow_redirects=False)
            assert r.status_code < 500 and r.status_code in (303, 422), (path, value, r.status_code)
