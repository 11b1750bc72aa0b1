"""Property-based requests against the OpenAPI schema of every route (schemathesis): whatever the
input, the answer is 2xx or 4xx — never a 500. Runs on its own database per backend (the generated
requests create schedules, keys and uploads), from its own client address (they also fail sign-ins,
which the throttle counts), as an administrator so the handlers run past their role checks.

Operations excluded below are owned by other work in progress; each names its owner."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings as hsettings

from rhip.config import Settings
from rhip.security.service import issue_token
from tests.conftest import SECRET, create_pg_database, drop_pg_database

MAX_EXAMPLES = 12  # per operation: ~100 operations, a minute or two per backend on a shared machine

# (method, path) not fuzzed here, with who fixes them (none left: the FHIR inputs and the months are fixed)
EXCLUDED: dict[tuple[str, str], str] = {}
# a 503 that names a dependency the answer needs and that the test app does not run (the PACS, the audit
# store) is the declared answer to an outage, not a crash on the input
OUTAGES = ("pacs-unavailable", "audit-unavailable", "unavailable")


def _client_address(app: Any, addr: str) -> Any:
    """The app seen from another client address (the throttle keys on it)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "client": (addr, 50000)}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture(scope="module")
def api_schema(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app's OpenAPI schema, served by a fresh app on its own database."""
    from rhip.web.app import create_app

    url = create_pg_database() if backend == "postgres" else None
    settings = Settings(
        data_dir=tmp_path_factory.mktemp(f"schemathesis-{backend}"), database_url=url, secret_key=SECRET
    )
    app = create_app(settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", _client_address(app, "10.250.0.1"))
    yield schema
    app.state.db.dispose()
    if url:
        drop_pg_database(url)


ADMIN = {"Authorization": f"Bearer {issue_token(SECRET, subject='fuzz-admin', role='admin')}"}


# ~100 operations × MAX_EXAMPLES requests: a minute or two alone, but two CI runs beside eight busy
# sessions (load ~35) took it past the suite's 600 s per test, and pytest-timeout's failure inside
# hypothesis's replay showed as a FlakyReplay; a hang still fails, later
@pytest.mark.timeout(1800)
def test_no_input_gets_a_500(api_schema: Any) -> None:
    """Every operation, MAX_EXAMPLES generated requests each; every 5xx is collected and reported."""
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    ran = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in EXCLUDED:
            continue
        ran += 1

        @given(case=operation.as_strategy())
        @hsettings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            auth = ADMIN
            # logout would revoke the token every other case uses (run() is called within this iteration)
            if key == ("POST", "/api/v1/auth/logout"):  # noqa: B023
                auth = {"Authorization": f"Bearer {issue_token(SECRET, subject='fuzz-x', role='admin')}"}
            # a generous timeout: the machine running the suite may be busy (a slow answer is not a 500)
            response = case.call(headers={**auth, "Sec-Fetch-Site": "same-origin"}, timeout=120)
            statuses[response.status_code] += 1
            outage = response.status_code == 503 and any(f'"code":"{c}"' in response.text for c in OUTAGES)
            if response.status_code >= 500 and not outage:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query or ''} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        run()
    assert ran > 50 and statuses.total() > ran * 3, statuses
    print(f"schemathesis: {ran} operations, answers by status {sorted(statuses.items())}")
    assert not failures, "\n".join(dict.fromkeys(failures))
