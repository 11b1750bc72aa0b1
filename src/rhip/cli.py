"""The `rhip` command: demo, serve, synth, db, registry, token, user."""

from __future__ import annotations

import os
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rhip.config import Settings
from rhip.errors import RhipError

app = typer.Typer(
    help="rhip 区域全民健康信息平台 (regional health information platform)", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema (Alembic migrations)", no_args_is_help=True)
registry_app = typer.Typer(
    help="The registry of institutions, districts and code systems", no_args_is_help=True
)
user_app = typer.Typer(help="Users and API keys", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(user_app, name="user")
from rhip.intake.commands import app as intake_app, legacy_argv  # noqa: E402
from rhip.quality.commands import app as quality_app  # noqa: E402

app.add_typer(quality_app, name="quality")
from rhip.identity.commands import app as identity_app  # noqa: E402

app.add_typer(identity_app, name="identity")
from rhip.records.commands import app as records_app, audit_app  # noqa: E402

app.add_typer(records_app, name="records")
app.add_typer(audit_app, name="audit")
from rhip.mch.commands import app as mch_app  # noqa: E402

app.add_typer(mch_app, name="mch")
from rhip.selfservice.commands import app as selfservice_app  # noqa: E402

app.add_typer(selfservice_app, name="selfservice")
from rhip.hotline.commands import app as hotline_app  # noqa: E402

app.add_typer(hotline_app, name="hotline")
from rhip.telemed.commands import app as telemed_app  # noqa: E402

app.add_typer(telemed_app, name="telemed")
from rhip.security.commands import app as security_app  # noqa: E402

app.add_typer(security_app, name="security")
app.add_typer(intake_app, name="intake")
console = Console()
err = Console(stderr=True)

# Each later part of the platform joins the demo here: a module with
# `run(*, settings, synth_dir, console) -> list[tuple[str, str]]` (summary rows: 环节, 结果).
DEMO_STEPS: list[str] = [
    "rhip.fhir.demo",
    "rhip.booking.demo",
    "rhip.identity.demo",
    "rhip.records.demo",
    "rhip.hotline.demo",
    "rhip.telemed.demo",
    "rhip.selfservice.demo",
    "rhip.mch.demo",
    "rhip.security.demo",
    "rhip.quality.demo",
    "rhip.intake.clustercmd",
    "rhip.bulletin.demo",
    "rhip.web.demo",
]


def _settings() -> Settings:
    return Settings()


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]错误：[/]{message}")
    return typer.Exit(code)


def _ready(settings: Settings) -> None:
    """Upgrade the schema and make sure the registry is loaded."""
    from rhip.registry import service as registry

    registry.prepare(settings.resolved_database_url)


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Bring the database schema up to date."""
    from rhip.db.engine import current_revision, upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url, revision)
    console.print(
        f"数据库已升级到 {current_revision(settings.resolved_database_url)}"
        f"（{settings.resolved_database_url}）"
    )


@registry_app.command("load")
def registry_load() -> None:
    """(Re)load the registry data files into the database."""
    from rhip.db.engine import Database, upgrade
    from rhip.registry import service as registry

    settings = _settings()
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        counts = registry.load(s)
    db.dispose()
    table = Table(title="注册库已加载")
    table.add_column("类别")
    table.add_column("数量", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    console.print(table)


@app.command()
def token(
    role: Annotated[
        str, typer.Option(help="resident, doctor, family_doctor, uploader, agent, manager, auditor, admin")
    ],
    institution: Annotated[str | None, typer.Option(help="机构代码 the token is bound to")] = None,
    subject: Annotated[str, typer.Option(help="Subject (user name, resident ID, ...)")] = "cli",
    ttl_minutes: Annotated[int, typer.Option(help="Lifetime in minutes")] = 60,
) -> None:
    """Print a bearer token for scripts and tests."""
    from rhip.security.roles import Role
    from rhip.security.service import issue_token

    settings = _settings()
    try:
        if Role(role) is Role.uploader and not institution:
            raise _fail("uploader 令牌必须指定 --institution 机构代码")
        tok = issue_token(
            settings.resolved_secret_key,
            subject=subject,
            role=role,
            institution_code=institution,
            ttl=timedelta(minutes=ttl_minutes),
        )
    except ValueError:
        raise _fail(f"未知角色：{role}（可选：{', '.join(r.value for r in Role)}）") from None
    typer.echo(tok)


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    institution: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user who signs in with a password."""
    from rhip.db.engine import Database
    from rhip.security import service as security

    settings = _settings()
    _ready(settings)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        user = security.create_user(
            s,
            username=username,
            password=password,
            role=role,
            display_name=name,
            institution_code=institution,
        )
    db.dispose()
    console.print(f"已创建用户 {user.username}（{role}）")


@user_app.command("api-key")
def user_api_key(
    institution: Annotated[str, typer.Option(help="机构代码")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "uploads",
) -> None:
    """Issue an upload API key for an institution (printed once)."""
    from rhip.db.engine import Database
    from rhip.registry import service as registry
    from rhip.security import service as security

    settings = _settings()
    _ready(settings)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        inst = registry.get_institution(s, code=institution)
        _key, plain = security.create_api_key(s, institution_code=inst.code, name=name)
    db.dispose()
    typer.echo(plain)


@app.command("intake-compact", hidden=True)
def intake_compact() -> None:
    """Old name of `rhip intake compact`."""
    from rhip.intake.commands import compact

    compact()


@app.command()
def bulletin(
    month: Annotated[str, typer.Option(help="Statistics month, YYYY-MM")],
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("var/bulletin"),
    layout: Annotated[
        str | None,
        typer.Option(help="Table layout of an era: 2018, 2020, 2022 or 2025 (default: the month's)"),
    ] = None,
) -> None:
    """Write the monthly bulletin (南京卫生信息化简报) as HTML, PDF and XLSX."""
    from rhip.bulletin.commands import run as run_bulletin

    settings = _settings()
    _ready(settings)
    try:
        _b, paths, elapsed = run_bulletin(
            settings=settings, month=month, out=out, console=console, layout=layout
        )
    except RhipError as exc:
        raise _fail(exc.detail) from None
    for fmt, path in paths.items():
        console.print(f"{fmt.upper()}：{path}")
    console.print(f"用时 {elapsed:.1f} 秒")


@app.command()
def synth(
    month: Annotated[str, typer.Option(help="Month to synthesise, YYYY-MM")] = "2025-03",
    scale: Annotated[
        float, typer.Option(help="Share of the real city's volume (1.0 = the bulletin's figures)")
    ] = 0.01,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files)")] = 42,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("var/synth"),
    gbk_share: Annotated[float, typer.Option(help="Share of CSV files written in GBK")] = 0.1,
    workers: Annotated[
        int | None, typer.Option(help="Generate on a local cluster of N worker processes")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Generate on a Dask cluster: tcp://host:8786 (default RHIP_DASK_SCHEDULER)"),
    ] = None,
) -> None:
    """Synthesise a city month: residents, every institution's upload files and a ground truth (the same
    bytes in one process, on N local processes or on a cluster, for the same seed)."""
    from rhip.lake.cluster import Job, client, scheduler_address
    from rhip.synth import outputs as synth_outputs, service as synth_service

    try:
        with client(scheduler=scheduler_address(scheduler), workers=workers) as c:
            result = synth_service.generate(
                month=month,
                scale=scale,
                seed=seed,
                out=out,
                gbk_share=gbk_share,
                console=console,
                job=Job(client=c),
            )
    except RhipError as exc:
        raise _fail(exc.detail) from None
    synth_outputs.print_summary(result, console)


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its ended child processes (the intake step's workers)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


@app.command()
def demo(
    scale: Annotated[float, typer.Option(help="Share of the real city's volume")] = 0.01,
    month: Annotated[str, typer.Option(help="Month, YYYY-MM")] = "2025-03",
    seed: Annotated[int, typer.Option()] = 42,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the portal afterwards")] = False,
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="The lake job on a local cluster of N processes", min=1, max=64)
    ] = None,
) -> None:
    """The main job: synthesise a month, run it through every part of the platform, print a summary."""
    from rhip.db.engine import Database
    from rhip.registry import service as registry
    from rhip.synth import outputs as synth_outputs, service as synth_service

    settings = _settings()
    if workers:
        settings = settings.model_copy(update={"dask_workers": workers})
    started = time.perf_counter()
    console.rule(f"[bold]rhip demo · {month} · 规模 {scale}")
    _ready(settings)
    db = Database.from_settings(settings)
    with db.session() as s:
        reg_counts = registry.counts(s)
    db.dispose()
    out = settings.data_dir / "demo" / month
    # each step's wall and CPU seconds (main and helper threads), so a slow demo says which step is slow
    timings: list[tuple[str, float, float]] = []
    lap = (time.perf_counter(), _cpu_seconds())

    def _lap(name: str) -> None:
        nonlocal lap
        now = (time.perf_counter(), _cpu_seconds())
        timings.append((name, now[0] - lap[0], now[1] - lap[1]))
        lap = now

    try:
        result = synth_service.generate(
            month=month, scale=scale, seed=seed, out=out, gbk_share=0.1, console=console
        )
    except RhipError as exc:
        raise _fail(exc.detail) from None
    _lap("synth")

    step_rows: list[tuple[str, str]] = []
    for module_name in DEMO_STEPS:
        import importlib

        step = importlib.import_module(module_name)
        try:
            step_rows.extend(step.run(settings=settings, synth_dir=out, console=console))
        except RhipError as exc:
            raise _fail(f"{module_name}: {exc.detail}") from None
        _lap(module_name.split(".")[1])

    summary = Table(title=f"rhip demo 汇总（{month}，规模 {scale}）")
    summary.add_column("环节")
    summary.add_column("结果")
    summary.add_row("数据库", settings.resolved_database_url)
    summary.add_row("注册库", "，".join(f"{k} {v}" for k, v in reg_counts.items()))
    summary.add_row("合成城市", synth_outputs.one_line(result))
    summary.add_row("上传文件", str(out))
    for name, value in step_rows:
        summary.add_row(name, value)
    summary.add_row("用时", f"{time.perf_counter() - started:.1f} 秒")
    summary.add_row(
        "用时 · 各环节（墙钟/CPU 秒）",
        "；".join(f"{name} {wall:.1f}/{cpu:.1f}" for name, wall, cpu in timings),
    )
    console.print(summary)
    console.print(f"逐机构明细：rhip synth --month {month} --scale {scale} --seed {seed}")
    console.print(f"输出：上传文件与真值 {out}；数据湖 {settings.lake_uri or settings.resolved_lake_dir}")
    console.print("门户：rhip serve → http://127.0.0.1:8000/（多进程：rhip serve --workers 4）")
    from rhip.web.demo import print_accounts

    print_accounts(settings, console)
    if serve:
        _serve(settings, "127.0.0.1", port)


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    from rhip.telemed.jobs import pacs_for_serving
    from rhip.web.app import create_app

    console.print(f"门户：http://{host}:{port}/  接口文档：http://{host}:{port}/docs")
    # the telemedicine PACS: RHIP_ORTHANC_URL, or an Orthanc rhip starts under the data folder
    with pacs_for_serving(settings) as pacs:
        if pacs is not None:
            console.print(f"影像归档（Orthanc）：{pacs.url}，DICOM 端口 {pacs.dicom_port or '—'}")
        if workers <= 1:
            uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())
            return
        # several processes: the schema and registry are made ready once, here, not raced by every worker;
        # each worker builds the same app from the same RHIP_* environment (docs/deployment.md)
        _ready(settings)
        uvicorn.run(
            "rhip.web.app:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (production: about one per core)")
    ] = 1,
) -> None:
    """Serve the portal: API, FHIR facade and pages (one process, or --workers N processes)."""
    _serve(_settings(), host, port, workers)


def main() -> None:
    """Entry point: domain errors become one readable line and exit code 2."""
    # everything the platform writes (database, lake, secrets, bulletins) is its owner's only
    os.umask(0o077)
    try:
        app(args=legacy_argv(sys.argv)[1:])
    except RhipError as exc:
        err.print(f"[bold red]错误：[/]{exc.detail}")
        sys.exit(2)


if __name__ == "__main__":
    main()
