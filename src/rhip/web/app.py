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
    ("rhip.fhir.api", "/fhir/r4", "fhir"),
    ("rhip.intake.pages", "", ""),
    ("rhip.quality.api", "/api/v1/quality", "quality"),
    ("rhip.quality.pages", "", ""),
    ("rhip.bulletin.pages", "", ""),
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
        upgrade(settings.resolved_database_url)
        from rhip.registry import service as registry_service

        with db.session() as s, s.begin():
            registry_service.ensure_loaded(s)

    app = FastAPI(
        title="rhip 区域全民健康信息平台",
        version=rhip.__version__,
        description="Regional health information platform API: registry, intake, booking, records, FHIR R4.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        telemetry={"tracing": settings.telemetry, "metrics": settings.telemetry, "logs": settings.telemetry},
    )
    app.state.settings = settings
    app.state.db = db
    app.state.templates = make_templates()
    problems.install(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    for module_name, prefix, tag in ROUTERS:
        module = importlib.import_module(module_name)
        if tag:
            app.include_router(module.router, prefix=prefix, tags=[tag])
        else:
            app.include_router(module.router, prefix=prefix)
    return app
