"""Registry API, pages and service: pagination, filters, errors, loading, the migration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.errors import NotFound
from rhip.registry import data, service
from rhip.registry.models import Institution, InstitutionAlias, RegistryMeta

API = "/api/v1/registry"


def _problem(r: Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert isinstance(body, dict)
    return body


def test_pagination_covers_everything_once(client: TestClient) -> None:
    first = client.get(f"{API}/institutions", params={"limit": 100}).json()
    total = first["total"]
    assert total == len(data.institutions())
    seen: list[str] = []
    for offset in range(0, total, 100):
        page = client.get(f"{API}/institutions", params={"limit": 100, "offset": offset}).json()
        assert page["limit"] == 100 and page["offset"] == offset and page["total"] == total
        seen += [i["code"] for i in page["items"]]
    assert len(seen) == len(set(seen)) == total
    beyond = client.get(f"{API}/institutions", params={"offset": total + 10}).json()
    assert beyond["items"] == [] and beyond["total"] == total


def test_filters(client: TestClient) -> None:
    by_name = client.get(f"{API}/institutions", params={"district": "江宁区", "limit": 500}).json()
    by_code = client.get(f"{API}/institutions", params={"district": "320115", "limit": 500}).json()
    assert by_name == by_code and by_name["total"] > 20
    assert {i["district"] for i in by_name["items"]} == {"江宁区"}
    chc = client.get(f"{API}/institutions", params={"kind": "community_health_centre", "limit": 1}).json()
    assert chc["total"] == 116
    tertiary = client.get(f"{API}/institutions", params={"level": "三级", "limit": 500}).json()
    assert all(i["tertiary"] for i in tertiary["items"])
    both = client.get(
        f"{API}/institutions", params={"level": "三级", "district": "鼓楼区", "q": "医院", "limit": 500}
    ).json()
    assert {"H001", "H020"} <= {i["code"] for i in both["items"]}
    assert all(i["district"] == "鼓楼区" and i["level"] == "三级" for i in both["items"])
    wuhu = client.get(f"{API}/institutions", params={"city": "芜湖"}).json()
    assert {i["code"] for i in wuhu["items"]} >= {"M34020001"}
    assert all(i["city"] == "芜湖市" for i in wuhu["items"])


def test_search_matches_code_name_and_alias_substrings(client: TestClient) -> None:
    items = client.get(f"{API}/institutions", params={"q": "H02", "limit": 500}).json()["items"]
    assert items and all(i["code"].startswith("H02") for i in items)
    assert client.get(f"{API}/institutions", params={"q": "h020"}).json()["items"][0]["code"] == "H020"
    # an alias substring finds the institution by its former name
    items = client.get(f"{API}/institutions", params={"q": "南京军区"}).json()["items"]
    assert {i["code"] for i in items} == {"H040", "H042"}
    # exact matches first: the hospital itself, then its branch that contains the name
    items = client.get(f"{API}/institutions", params={"q": "南京市儿童医院"}).json()["items"]
    assert [i["code"] for i in items[:2]] == ["H024", "H035"]
    none = client.get(f"{API}/institutions", params={"q": "火星医院"}).json()
    assert none == {"items": [], "total": 0, "limit": 50, "offset": 0}
    # LIKE wildcards in the query are literal
    assert client.get(f"{API}/institutions", params={"q": "%"}).json()["total"] == 0


def test_institution_detail_and_404(client: TestClient) -> None:
    body = client.get(f"{API}/institutions/H041").json()
    assert body["name"] == "东部战区总医院秦淮医疗区" and body["parent_code"] == "H040"
    assert "解放军第八一医院" in body["aliases"] and body["ownership"] == "部队"
    assert client.get(f"{API}/institutions/h041").json()["code"] == "H041"
    problem = _problem(client.get(f"{API}/institutions/NOPE"), 404)
    assert "NOPE" in str(problem["detail"]) and problem["code"] == "institution-not-found"


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"limit": "abc"}, {"offset": -1}, {"level": "特级"}, {"kind": "clinic"}],
)
def test_bad_query_parameters_are_422(client: TestClient, params: dict[str, object]) -> None:
    _problem(client.get(f"{API}/institutions", params=params), 422)


def test_unknown_district_filter_is_422_and_detail_404(client: TestClient) -> None:
    body = _problem(client.get(f"{API}/institutions", params={"district": "火星区"}), 422)
    assert "火星区" in str(body["detail"])
    _problem(client.get(f"{API}/districts/999999"), 404)


def test_districts(client: TestClient) -> None:
    ds = client.get(f"{API}/districts").json()
    assert len(ds) == 12 and ds[0]["name"] == "玄武区" and ds[-1]["name"] == "江北新区"
    assert sum(d["community_centre_count"] for d in ds) == 116
    one = client.get(f"{API}/districts/江宁区").json()
    assert one["code"] == "320115" and one["platform_code"] == "D320115"
    assert one == client.get(f"{API}/districts/320115").json()
    parts = one["hospital_count"] + one["mch_count"] + one["community_centre_count"]
    assert one["institution_count"] == parts + 1  # and the district platform
    assert client.get(f"{API}/districts/江北新区").json()["synthetic_code"] is True


def test_reference_lists(client: TestClient) -> None:
    deps = client.get(f"{API}/departments").json()
    assert {"code": "03.04", "name": "心血管内科专业", "parent_code": "03"} in deps
    channels = client.get(f"{API}/channels").json()
    assert {c["group"] for c in channels} >= {"online_12320", "quick", "phone", "in_clinic", "third_party"}
    hotline = client.get(f"{API}/hotline-categories").json()
    assert {h["kind"] for h in hotline} == {"call", "work_order"}
    tele = client.get(f"{API}/telemed-centres").json()
    assert len(tele) == 5 and tele[0]["hub_name"] == "南京鼓楼医院"
    metro = client.get(f"{API}/metro-cities").json()
    assert len(metro) >= 8 and all(m["institution_count"] >= 1 for m in metro)


def test_load_is_idempotent(session: Session) -> None:
    with session.begin():
        before = service.counts(session)
        first = service.load(session)
        second = service.load(session)
        after = service.counts(session)
    assert first == second
    assert before == after
    assert first["行政区"] == 12 and first["机构"] == len(data.institutions())
    assert after["社区卫生服务中心"] == 116 and after["采集三级医疗机构"] == 35
    assert after["采集二级医疗机构"] == 22 and after["机构别名"] == first["机构别名"]


def test_ensure_loaded_reloads_only_when_the_data_changed(session: Session) -> None:
    def n_aliases() -> int:
        return int(session.scalar(select(func.count()).select_from(InstitutionAlias)) or 0)

    session.begin()
    try:
        aliases = n_aliases()
        meta = session.get(RegistryMeta, service.HASH_KEY)
        assert meta is not None
        meta.value = "stale"
        session.execute(delete(InstitutionAlias))
        service.ensure_loaded(session)
        assert session.get(RegistryMeta, service.HASH_KEY).value == data.data_hash()  # type: ignore[union-attr]
        assert n_aliases() == aliases
        session.execute(delete(InstitutionAlias))
        service.ensure_loaded(session)  # hash matches and institutions exist: nothing to do
        assert n_aliases() == 0
    finally:
        session.rollback()


def test_get_institution_raises_not_found(session: Session) -> None:
    with pytest.raises(NotFound) as info:
        service.get_institution(session, code="Z999")
    assert "Z999" in info.value.detail


def test_reload_renames_moves_names_and_deactivates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    try:
        with db.session() as s, s.begin():
            service.load(s)
        records = data.institutions()
        a = next(r for r in records if r.code == "H080")
        b = next(r for r in records if r.code == "H081")
        changed = [
            dataclasses.replace(r, name=b.name, aliases=("测试别名",))
            if r.code == "H080"
            else dataclasses.replace(r, name=a.name)
            if r.code == "H081"
            else r
            for r in records
            if r.code != "H090"
        ]
        monkeypatch.setattr(data, "institutions", lambda: changed)
        with db.session() as s, s.begin():
            service.load(s)
            assert s.get(Institution, "H080").name == "南京同仁医院"  # type: ignore[union-attr]
            assert s.get(Institution, "H081").name == "南京明基医院"  # type: ignore[union-attr]
            assert s.get(Institution, "H090").active is False  # type: ignore[union-attr]
            items, total = service.get_all_institutions(s, q="测试别名")
            assert [i.code for i in items] == ["H080"] and total == 1
            items, _ = service.get_all_institutions(s, q="南京理工大学校医院")
            assert items == []
    finally:
        db.dispose()


def test_pages_render_in_chinese(client: TestClient) -> None:
    html = client.get("/registry/institutions").text
    assert "机构注册库" in html and "玄武区" in html and "下一页" in html
    found = client.get(
        "/registry/institutions", params={"q": "南京军区南京总医院", "district": "", "level": ""}
    )
    assert found.status_code == 200 and "东部战区总医院" in found.text
    filtered = client.get("/registry/institutions", params={"district": "320115", "kind": "hospital"}).text
    assert "南京市江宁医院" in filtered and "南京鼓楼医院" not in filtered
    detail = client.get("/registry/institutions/H040").text
    assert "南京军区南京总医院" in detail and "东部战区总医院汤山分院" in detail and "三级" in detail
    districts = client.get("/registry/districts").text
    assert "社区卫生服务中心" in districts and "/registry/institutions?district=320102" in districts
    assert "芜湖市" in districts
    missing = client.get("/registry/institutions/NOPE", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "机构代码不存在" in missing.text
