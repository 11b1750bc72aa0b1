"""The intake step of `rhip demo`: ingest the synthetic month — mostly batch files, the lab results as
real-time posts, a share of them as FHIR Bundles (when the FHIR facade drives this step: `rhip.fhir.demo`)
and a few discharge summaries as CDA documents (出院小结).

Records routed to FHIR or CDA are taken out of the files they came from and are only ever clean ones (no
planted defect or change in the ground truth), so every record still arrives exactly once and the counts
still match the synthetic city's ground truth.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.intake import cda, cdawriter, formats, pipeline, reading, rules, service, store
from rhip.lake.store import Lake

REALTIME_DEMO_TABLE = "lab_result"  # sent through the real-time path, after the batch files
REALTIME_CHUNK = 5000
CDA_DEMO_TABLE = "discharge_summary"  # some sent as 出院小结 CDA documents, one per request
CDA_PER_ORG = 3
FHIR_ROWS = 2000  # lab results per institution sent as FHIR Observations (when a sender is given)
# the FHIR facade is a higher layer than intake: it passes its sender in (org, clean rows) -> receipts
FhirSender = Callable[[str, pl.DataFrame], list[service.Receipt]]
# ... or, for worker processes, a module-level function making one from the settings (it pickles by name)
FhirFactory = Callable[[Settings], FhirSender]
# processes ingesting institutions side by side in `rhip demo` (institutions never share a batch, and each
# one's batches stay in order in one process; the per-institution locks and the Delta log's create-if-absent
# commits let them write the same tables, and their SQL commits take turns, see `service.commits_serialised`)
WORKERS = min(2, os.cpu_count() or 1)


def manifest_files(synth_dir: Path) -> list[dict[str, Any]]:
    """The upload files the synthetic city wrote (manifest.json), or every CSV under uploads/."""
    path = synth_dir / "manifest.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        files = (data.get("uploads") or data.get("files") or []) if isinstance(data, dict) else data
        return [f for f in files if isinstance(f, dict) and str(f.get("path", "")).startswith("uploads/")]
    return [
        {"path": str(p.relative_to(synth_dir)), "org_code": p.parent.name, "table": None, "encoding": None}
        for p in sorted((synth_dir / "uploads").glob("*/*.csv"))
    ]


def _is_correction(path: str) -> bool:
    """The month-end correction files are named <table>_<yyyymmdd>.csv."""
    return re.search(r"_\d{8}\.[a-z]+$", path) is not None


def _clean_keys(synth_dir: Path) -> dict[tuple[str, str], set[str]] | None:
    """Business keys with anything planted on them (defect, duplicate, change), per (org, table)."""
    path = synth_dir / "ground_truth" / "defects.parquet"
    if not path.is_file():
        return None
    # a worker process runs one institution per task: the ground truth is read once per process (at scale
    # 0.01 it is ~0.4 s of sets each time), while the file stays the same
    stat = path.stat()
    return _touched(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _touched(path: str, _mtime_ns: int, _size: int) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for org, table, keys in (
        pl.read_parquet(path, columns=["org_code", "table", "business_key"])
        .group_by("org_code", "table")
        .agg("business_key")
        .iter_rows()
    ):
        out[(str(org), str(table))] = set(keys)
    return dict(out)


def _pick_clean(
    frame: pl.DataFrame, table: str, org: str, touched: dict[tuple[str, str], set[str]] | None, n: int
) -> pl.DataFrame:
    """Up to n rows of a file frame that nothing was planted on (none when there is no ground truth)."""
    if touched is None or n <= 0:
        return frame.clear()
    key = rules.key_expr(list(reading.get_dataset(table).business_key))
    bad = list(touched.get((org, table), set()))
    clean = frame.filter(
        ~key.is_in(pl.Series(bad, dtype=pl.String).implode())
        & key.is_not_null()
        & (pl.col("change_flag") == "1")
    )
    # a key sent twice in the file stays with the file: the repeat is what the file's dedup must count
    return clean.filter(key.is_unique()).head(n)


def _without(frame: pl.DataFrame, taken: pl.DataFrame) -> pl.DataFrame:
    """The file frame without the rows routed another way (matched by file and row)."""
    if not taken.height:
        return frame
    return frame.join(taken.select("_file", "_row"), on=["_file", "_row"], how="anti", maintain_order="left")


def _groups(
    synth_dir: Path, files: list[dict[str, Any]], *, realtime: bool
) -> tuple[list[tuple[list[reading.Upload], bool]], list[tuple[dict[str, Any], str]]]:
    """One institution's batches (main files, then the month-end corrections), each with whether it holds
    the CDA demo table, and its files sent through the real-time path instead."""
    batch_files: list[tuple[dict[str, Any], str]] = []
    rt_files: list[tuple[dict[str, Any], str]] = []
    for f in files:
        table = f.get("table") or reading.table_for_filename(Path(f["path"]).name)
        target = rt_files if realtime and table == REALTIME_DEMO_TABLE else batch_files
        target.append((f, table))
    groups = []
    for fixes in (False, True):
        group = [(f, t) for f, t in batch_files if _is_correction(f["path"]) == fixes]
        ups = [
            reading.Upload(
                path=synth_dir / f["path"], filename=Path(f["path"]).name, table=t, encoding=f.get("encoding")
            )
            for f, t in group
        ]
        if ups:
            groups.append((ups, not fixes and any(t == CDA_DEMO_TABLE for _f, t in group)))
    return groups, rt_files


def ingest_month(
    *,
    settings: Settings,
    synth_dir: Path,
    console: Console | None = None,
    realtime: bool = True,
    institutions: set[str] | None = None,
    cda_per_org: int = 0,
    fhir: FhirSender | None = None,
    fhir_rows: int = FHIR_ROWS,
    compact: bool = True,
    workers: int = 1,
    fhir_factory: FhirFactory | None = None,
) -> dict[str, Any]:
    """Ingest every institution's files; returns totals, per-rule rejections, receipts and channels.

    The FHIR share goes through `fhir`, or a sender `fhir_factory` makes. `workers` > 1: institutions are
    ingested side by side in that many processes (with the factory only: a sender cannot be sent to another
    process; with `fhir` alone, in this one)."""
    by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in manifest_files(synth_dir):
        if institutions is None or str(f["org_code"]) in institutions:
            by_org[str(f["org_code"])].append(f)
    if workers > 1 and len(by_org) > 1 and (fhir is None or fhir_factory is not None):
        return _side_by_side(
            by_org,
            workers=workers,
            console=console,
            compact=compact,
            task=dict(
                settings=settings,
                synth_dir=synth_dir,
                realtime=realtime,
                cda_per_org=cda_per_org,
                fhir_rows=fhir_rows,
                fhir_factory=fhir_factory,
            ),
        )
    if fhir is None and fhir_factory is not None:
        fhir = fhir_factory(settings)
    db = Database.from_settings(settings)
    lake = Lake.from_settings(settings)
    # one folder per process: the demo's workers each read ahead into their own
    work = settings.data_dir / "intake" / "incoming" / f"demo-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    touched = _clean_keys(synth_dir) if (cda_per_org or fhir) else None
    totals = pipeline.TableCounts()
    rules_hit: dict[str, int] = defaultdict(int)
    receipts: list[str] = []
    channels: dict[str, int] = defaultdict(int)
    cda_docs = fhir_resources = 0
    # seconds and records per way in (batch, realtime, fhir, cda): where the demo's time goes
    way_seconds: dict[str, float] = defaultdict(float)
    way_records: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    reader = ThreadPoolExecutor(max_workers=1)

    def count(receipt: service.Receipt, channel: str) -> None:
        receipts.append(receipt.batch_id)
        channels[channel] += 1
        total = receipt.outcome.total()
        way_records[channel] += total.received
        totals.add(total)
        probs = receipt.outcome.problems
        if probs is not None:
            for rule, n in probs.get_column("rule").value_counts().iter_rows():
                rules_hit[str(rule)] += int(n)

    # the batches leave their small files to the one compaction at the end (when compacting at all)
    deferred = service.compaction_deferred() if compact else contextlib.nullcontext()
    try:
        with db.session() as s, s.begin():
            service.recover(s, lake=lake)
        with (
            deferred,
            Progress(
                TextColumn("[bold]数据采集 {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                disable=console is None,
            ) as bar,
        ):
            task = bar.add_task("", total=len(by_org))
            plans = [(org, *_groups(synth_dir, fs, realtime=realtime)) for org, fs in sorted(by_org.items())]
            # every batch's files in processing order: the next batch's files are read on `reader` while
            # this one is validated and committed (reading needs nothing of the lake, only the files)
            queue = [(ups, takes_cda) for _org, groups, _rt in plans for ups, takes_cda in groups]
            ahead: dict[int, Mapping[str, Future[pl.DataFrame]]] = {}

            def prefetch(i: int) -> None:
                if i < len(queue) and i not in ahead:
                    folder = work / f"b{i}"  # transcoded copies of different batches never share a name
                    folder.mkdir(exist_ok=True)
                    with contextlib.suppress(RhipError):  # a bad batch fails in its own ingest() instead
                        ahead[i] = reading.read_uploads_ahead(queue[i][0], workdir=folder, pool=reader)

            at = 0
            for org, groups, rt_files in plans:
                bar.update(task, description=org)
                for ups, takes_cda in groups:
                    prefetch(at)
                    prefetch(at + 1)
                    frames: Mapping[str, pl.DataFrame | Future[pl.DataFrame]] | None = ahead.pop(at, None)
                    at += 1
                    documents = pl.DataFrame()
                    if cda_per_org and takes_cda:
                        # the CDA share is taken out of the file frames (read ahead like any batch's)
                        read: dict[str, pl.DataFrame | Future[pl.DataFrame]] = dict(
                            frames if frames is not None else reading.read_uploads(ups, workdir=work)
                        )
                        got_cda = read[CDA_DEMO_TABLE]
                        table = got_cda.result() if isinstance(got_cda, Future) else got_cda
                        documents = _pick_clean(table, CDA_DEMO_TABLE, org, touched, cda_per_org)
                        read[CDA_DEMO_TABLE] = _without(table, documents)
                        frames = read
                    t0 = time.perf_counter()
                    receipt = service.ingest(
                        db,
                        lake,
                        institution_code=org,
                        submitted_by="demo",
                        channel="batch",
                        uploads=ups,
                        frames=frames,
                        workdir=work,
                    )
                    way_seconds["batch"] += time.perf_counter() - t0
                    count(receipt, "batch")
                    t0 = time.perf_counter()
                    for rec in documents.drop("_file", "_row", strict=False).iter_rows(named=True):
                        raw = cdawriter.discharge_summary(rec, doc_id=f"{org}-{rec['admission_no']}")
                        _doc, got, _kept = cda.ingest_document(
                            db,
                            lake,
                            raw,
                            institution_code=org,
                            submitted_by="demo",
                            collected_at=str(rec["collected_at"]),
                        )
                        count(got, "cda")
                        cda_docs += 1
                    way_seconds["cda"] += time.perf_counter() - t0
                for f, t in rt_files:
                    t0 = time.perf_counter()
                    spent_fhir = 0.0
                    got_file = formats.read_file(
                        synth_dir / f["path"],
                        filename=Path(f["path"]).name,
                        encoding=f.get("encoding"),
                        workdir=work,
                    )
                    frame = reading.frame_of(reading.get_dataset(t), got_file.table)
                    if fhir is not None:
                        share = _pick_clean(frame, t, org, touched, fhir_rows)
                        if share.height:
                            t1 = time.perf_counter()
                            for got in fhir(org, share.drop("_file", "_row")):
                                count(got, "fhir")
                            spent_fhir = time.perf_counter() - t1
                            way_seconds["fhir"] += spent_fhir
                            fhir_resources += share.height
                            frame = _without(frame, share)
                    way_seconds["realtime"] += time.perf_counter() - t0 - spent_fhir  # reading the file
                    t0 = time.perf_counter()
                    for start in range(0, frame.height, REALTIME_CHUNK):
                        got = service.ingest(
                            db,
                            lake,
                            institution_code=org,
                            submitted_by="demo",
                            channel="realtime",
                            frames={t: frame.slice(start, REALTIME_CHUNK)},
                            workdir=work,
                        )
                        count(got, "realtime")
                    way_seconds["realtime"] += time.perf_counter() - t0
                bar.advance(task)
        seconds = time.perf_counter() - started
        compacted, compact_seconds = _compacted(lake, compact)
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(work, ignore_errors=True)
        db.dispose()
    return {
        "institutions": len(by_org),
        "files": sum(len(v) for v in by_org.values()),
        "totals": totals,
        "rules": dict(rules_hit),
        "receipts": receipts,
        "channels": dict(channels),
        "cda_documents": cda_docs,
        "fhir_resources": fhir_resources,
        "seconds": seconds,
        "compacted": compacted,
        "compact_seconds": compact_seconds,
        "way_seconds": dict(way_seconds),
        "way_records": dict(way_records),
        "workers": 1,
    }


def _compacted(lake: Lake, compact: bool) -> tuple[dict[str, tuple[int, int]], float]:
    """The one compaction after the month's intake (when asked) and its seconds: later readers (quality
    figures, the bulletin, the lake jobs) then open a few files per table, not hundreds."""
    if not compact:
        return {}, 0.0
    t0 = time.perf_counter()
    return store.compact_month_end(lake), time.perf_counter() - t0


_SENDER: list[FhirSender] = []  # a worker process's FHIR sender, made once from the factory


def _one_institution(task: dict[str, Any]) -> dict[str, Any]:
    """A worker process's task: the month of one institution, its small files left to the one compaction."""
    task = dict(task)
    factory: FhirFactory | None = task.pop("fhir_factory")
    if factory is not None and not _SENDER:
        _SENDER.append(factory(task["settings"]))
    with service.compaction_deferred(), service.commits_serialised():
        return ingest_month(**task, fhir=_SENDER[0] if factory is not None else None, compact=False)


def _side_by_side(
    by_org: dict[str, list[dict[str, Any]]],
    *,
    workers: int,
    console: Console | None,
    compact: bool,
    task: dict[str, Any],
) -> dict[str, Any]:
    """`ingest_month` over institutions in `workers` processes (largest first, so the two finish together),
    then the one compaction; the same totals, receipts and records as one process would leave."""
    settings: Settings = task["settings"]
    lake = Lake.from_settings(settings)
    db = Database.from_settings(settings)
    try:
        with db.session() as s, s.begin():
            service.recover(s, lake=lake)
    finally:
        db.dispose()
    size = {org: sum(int(f.get("rows") or f.get("bytes") or 1) for f in fs) for org, fs in by_org.items()}
    order = sorted(by_org, key=lambda o: (-size[o], o))
    merged: dict[str, Any] = {"institutions": len(by_org), "files": sum(len(v) for v in by_org.values())}
    totals = pipeline.TableCounts()
    sums: dict[str, dict[str, Any]] = {k: defaultdict(int) for k in ("rules", "channels", "way_records")}
    way_seconds: dict[str, float] = defaultdict(float)
    receipts: list[str] = []
    cda_docs = fhir_resources = 0
    started = time.perf_counter()
    # spawned, not forked: the parent's Polars and SQLite threads must not be copied mid-flight
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        with Progress(
            TextColumn("[bold]数据采集 {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=console is None,
        ) as bar:
            tick = bar.add_task(f"（{workers} 个进程）", total=len(order))
            futures = [pool.submit(_one_institution, {**task, "institutions": {org}}) for org in order]
            for fut in as_completed(futures):
                got = fut.result()
                totals.add(got["totals"])
                receipts += got["receipts"]
                cda_docs += got["cda_documents"]
                fhir_resources += got["fhir_resources"]
                for k, acc in sums.items():
                    for name, n in got[k].items():
                        acc[name] += n
                for name, sec in got["way_seconds"].items():
                    way_seconds[name] += sec
                bar.advance(tick)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.perf_counter() - started
    compacted, compact_seconds = _compacted(lake, compact)
    return {
        **merged,
        "totals": totals,
        "rules": dict(sums["rules"]),
        "receipts": receipts,
        "channels": dict(sums["channels"]),
        "cda_documents": cda_docs,
        "fhir_resources": fhir_resources,
        "seconds": seconds,
        "compacted": compacted,
        "compact_seconds": compact_seconds,
        # summed over the processes: busy seconds per way in, not the wall
        "way_seconds": dict(way_seconds),
        "way_records": dict(sums["way_records"]),
        "workers": workers,
    }


def run(
    *,
    settings: Settings,
    synth_dir: Path,
    console: Console,
    fhir: FhirSender | None = None,
    fhir_factory: FhirFactory | None = None,
    workers: int = WORKERS,
) -> list[tuple[str, str]]:
    """Demo step: ingest the synthetic month and return Chinese summary rows."""
    got = ingest_month(
        settings=settings,
        synth_dir=synth_dir,
        console=console,
        cda_per_org=CDA_PER_ORG,
        fhir=fhir,
        fhir_factory=fhir_factory,
        workers=workers,
    )
    t: pipeline.TableCounts = got["totals"]
    rate = t.received / got["seconds"] if got["seconds"] else 0.0
    rules = "，".join(f"{k} {v:,}" for k, v in sorted(got["rules"].items(), key=lambda kv: -kv[1])) or "无"
    ch = got["channels"]
    ways = "，".join(
        f"{service.CHANNELS.get(c, c)} {ch[c]:,} 个回执"
        for c in ("batch", "realtime", "fhir", "cda")
        if ch.get(c)
    )
    removed = sum(r for r, _a in got["compacted"].values())
    added = sum(a for _r, a in got["compacted"].values())
    per_way = "；".join(
        f"{service.CHANNELS.get(c, c)} {got['way_records'].get(c, 0):,} 条 {sec:.1f} 秒"
        + (f"（{got['way_records'].get(c, 0) / sec:,.0f} 条/秒）" if sec > 0 else "")
        for c in ("batch", "realtime", "fhir", "cda")
        if (sec := got["way_seconds"].get(c, 0.0)) or got["way_records"].get(c)
    )
    return [
        (
            "数据采集",
            f"{got['institutions']} 个机构、{got['files']} 个文件、{len(got['receipts'])} 个回执："
            f"接收 {t.received:,}，新增 {t.accepted:,}，更新 {t.updated:,}，撤销 {t.revoked:,}，"
            f"重复 {t.duplicate:,}，拒收 {t.rejected:,}",
        ),
        (
            "数据采集 · 途径",
            f"{ways}（FHIR 资源 {got['fhir_resources']:,} 个，CDA 出院小结 {got['cda_documents']:,} 份）",
        ),
        ("数据采集 · 拒收规则", rules),
        (
            "数据采集 · 速度",
            f"{got['seconds']:.1f} 秒，{rate:,.0f} 条/秒（{got['workers']} 个进程并行）；"
            f"数据湖小文件合并 {removed:,} → {added:,} 个文件，"
            f"{got['compact_seconds']:.1f} 秒",
        ),
        # with several processes, each way's seconds are summed over them (busy time, not the wall)
        ("数据采集 · 各途径用时" + ("（各进程合计）" if got["workers"] > 1 else ""), per_way or "无"),
    ]
