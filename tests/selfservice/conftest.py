"""Self-service fixtures: terminals with keys, made through the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

HOSPITAL = "H020"  # 南京鼓楼医院
OTHER = "H001"  # 江苏省人民医院


@pytest.fixture()
def terminal(client: TestClient, auth: Callable[..., dict[str, str]]) -> Callable[..., tuple[str, str]]:
    """Factory: a new terminal at an institution and its key, (code, key)."""

    def make(institution: str = HOSPITAL) -> tuple[str, str]:
        staff = auth("uploader", institution=institution)
        code = f"T{institution}-{uuid.uuid4().hex[:8]}"
        r = client.post(
            "/api/v1/selfservice/terminals",
            json={"institution_code": institution, "code": code, "location": "门诊大厅一楼"},
            headers=staff,
        )
        assert r.status_code == 201, r.text
        r = client.post(f"/api/v1/selfservice/terminals/{code}/key", headers=staff)
        assert r.status_code == 201, r.text
        return code, r.json()["key"]

    return make
