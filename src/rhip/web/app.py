"""create_app(settings): the API, the FHIR facade and the portal pages in one FastAPI app."""

from __future__ import annotations

import gc
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

import rhip
from rhip import logging as rlog
from rhip.config import Settings
from rhip.db.engine import POOL_SIZE, Database, upgrade
from rhip.web import nav, problems

PACKAGE = Path(rhip.__file__).parent

# (module with a `router`, URL prefix, OpenAPI tag or "" for pages); each part adds its lines here.
ROUTERS: list[tuple[str, str, str]] = [
    # first: routes are matched in order; behind the rest the flash-crowd booking route failed ~50 matches
    ("rhip.booking.api_book", "/api/v1/booking", "booking"),
    # the terminals' write and the health-card routes (resolution has a 20 ms target): behind the rest they
    # failed ~400 matches per request
    ("rhip.selfservice.api_txn", "/api/v1/selfservice", "selfservice"),
    ("rhip.selfservice.api_cards", "/api/v1/cards", "cards"),
    # a record view (p99 target 100 ms with reminders): behind the rest it failed ~25 router matches
    ("rhip.records.api_view", "/api/v1", "records"),
    ("rhip.web.core", "", ""),
    ("rhip.registry.api", "/api/v1/registry", "registry"),
    ("rhip.registry.api_catalogue", "/api/v1/registry", "registry"),
    ("rhip.web.pages", "", ""),
    ("rhip.registry.pages", "", ""),
    ("rhip.registry.pages_catalogue", "", ""),
    ("rhip.intake.api", "/api/v1/intake", "intake"),
    ("rhip.booking.api", "/api/v1/booking", "booking"),
    ("rhip.booking.fhir_api", "/fhir/r4", "fhir"),
    ("rhip.booking.pages", "", ""),
    ("rhip.booking.pages_account", "", ""),
    ("rhip.booking.pages_staff", "", ""),
    # before the facade: its POST /{type} would take a resident's Observation
    ("rhip.records.fhir_api", "/fhir/r4", "fhir"),
    ("rhip.fhir.api", "/fhir/r4", "fhir"),
    ("rhip.intake.pages", "", ""),
    ("rhip.quality.api", "/api/v1/quality", "quality"),
    ("rhip.quality.pages", "", ""),
    ("rhip.bulletin.pages", "", ""),
    ("rhip.identity.api", "/api/v1/identity", "identity"),
    ("rhip.identity.fhir_api", "/fhir/r4", "fhir"),
    ("rhip.identity.pages", "", ""),
    ("rhip.records.api", "/api/v1", "records"),
    ("rhip.records.cds_api", "", "cds-hooks"),
    ("rhip.records.pages", "", ""),
    ("rhip.mch.api", "/api/v1/mch", "mch"),
    ("rhip.mch.pages", "", ""),
    ("rhip.selfservice.api", "/api/v1/selfservice", "selfservice"),
    ("rhip.selfservice.pages", "", ""),
    ("rhip.hotline.api", "/api/v1/hotline", "hotline"),
    ("rhip.hotline.api_assistant", "/api/v1/assistant", "assistant"),
    ("rhip.hotline.pages", "", ""),
    ("rhip.telemed.api", "/api/v1/telemed", "telemed"),
    ("rhip.telemed.api_imaging", "/api/v1/telemed/imaging", "telemed"),
    ("rhip.telemed.api_more", "/api/v1/telemed", "telemed"),
    ("rhip.telemed.api_reports", "/api/v1/telemed", "telemed"),
    ("rhip.telemed.pages", "", ""),
    ("rhip.telemed.fhir_api", "/fhir/r4", "fhir"),
]
HERE = Path(__file__).parent


def template_dirs() -> list[str]:
    """web/templates first, then every domain's templates/ folder."""
    dirs = [HERE / "templates", *sorted(p for p in PACKAGE.glob("*/templates") if p.parent != HERE)]
    return [str(d) for d in dirs]


def make_templates() -> Jinja2Templates:
    """The Jinja2 environment shared by every page."""
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(d) for d in template_dirs()]),
        autoescape=select_autoescape(["html", "xml"]),
    )
    env.globals["nav"] = nav.nav
    return Jinja2Templates(env=env)


def worker_app() -> FastAPI:
    """The app of one `rhip serve --workers N` process: settings from the environment, schema already made."""
    return create_app(Settings(), migrate=False)


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """The whole web application for these settings (migrates the database unless told not to)."""
    settings = settings or Settings()
    rlog.configure(settings.log_level, settings.log_json)
    db = Database.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # sync routes run in anyio's thread pool (default 40 threads): no more at once than pooled
        # connections, or the pool opens and closes a connection per request under load
        anyio.to_thread.current_default_thread_limiter().total_tokens = POOL_SIZE
        # the ~200k objects of the loaded app out of the collector's reach: a full collection walked
        # them all (~140 ms, the event loop stopped), the p99 of every route under load
        gc.freeze()
        yield
        db.dispose()
        # frozen objects are never collected, not even at exit: garbage frozen with the app (DuckDB
        # relations and types among it) outlived the interpreter and DuckDB's bindings reported it as
        # ~150 lines of "nanobind: leaked instance" at every exit
        gc.unfreeze()

    if migrate:
        from rhip.db.locks import db_lock
        from rhip.registry import service as registry_service

        # `rhip serve --workers N` starts N processes at once: one migrates and loads the registry while
        # the others wait, then find it done (two loading an empty registry at once broke a unique key and
        # one worker died at start)
        with db_lock(db.engine, "rhip-startup"):
            upgrade(settings.resolved_database_url)
            with db.session() as s, s.begin():
                registry_service.ensure_loaded(s)

    app = FastAPI(
        title="rhip 区域全民健康信息平台",
        version=rhip.__version__,
        description="Regional health information platform API: registry, intake, booking, records, FHIR R4.",
        lifespan=lifespan,
        docs_url=None,  # web.pages serves /docs from vendored Swagger UI files (no CDN, no inline script)
        redoc_url=None,
        openapi_url="/openapi.json",
        telemetry={"tracing": settings.telemetry, "metrics": settings.telemetry, "logs": settings.telemetry},
    )
    app.state.settings = settings
    app.state.db = db
    app.state.templates = make_templates()
    problems.install(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_dir())), name="docs-assets")

    for module_name, prefix, tag in ROUTERS:
        module = importlib.import_module(module_name)
        if tag:
            app.include_router(module.router, prefix=prefix, tags=[tag])
        else:
            app.include_router(module.router, prefix=prefix)
    install_security(app, settings)
    return app


def swagger_dir() -> Path:
    """Swagger UI's files, from the swagger-ui-bundle package that setup installs."""
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


# sign-in and sign-up forms: they set the session cookie, so they are checked against login CSRF
LOGIN_PATHS = (
    "/login",
    "/booking/login",
    "/booking/register",
    "/booking/register/verify",
    "/booking/register/resend",
)


def install_security(app: FastAPI, settings: Settings) -> None:
    """The security-headers and CSRF middleware; a CSRF refusal is audited like any other."""
    from starlette.requests import Request
    from starlette.types import Scope

    from rhip.security.deps import audit_refusal
    from rhip.security.masking import install_log_masking
    from rhip.security.middleware import SecurityMiddleware

    install_log_masking()

    async def on_refusal(scope: Scope, code: str) -> None:
        request = Request({**scope, "app": app})
        await anyio.to_thread.run_sync(lambda: audit_refusal(request, status=403, code=code))

    app.add_middleware(
        SecurityMiddleware,
        https=settings.secure_cookies,
        trusted_origins=settings.trusted_origins,
        login_paths=LOGIN_PATHS,
        on_refusal=on_refusal,
    )
