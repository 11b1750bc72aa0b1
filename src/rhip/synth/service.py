"""The synthetic city: generate a month of uploads calibrated to the bulletin, with a ground truth.

Output folder layout (see docs in the module docstring of each part):

    uploads/<org_code>/<table>.csv            the month's upload of one catalogue table (header = field names)
    uploads/<org_code>/<table>_<yyyymmdd>.csv the month-end correction batch: re-sends, 修改 (2), 撤销 (3)
    residents.parquet                          every resident of the synthetic city
    statistics_report.csv                      the 卫统 monthly report: each unit's TRUE visits and discharges
    record_usage.csv                           reported record-browser / smart-reminder usage (synth.usage)
    ground_truth/          what the platform must find (it never reads this folder)
        institutions.json  per unit: calibrated valid figures, rows sent, real-time days and forms
        tables.parquet     per unit and table: rows, valid, duplicates, modifications, revocations, defects
        defects.parquet    one row per planted defect or version event: unit, table, key, rule, field, file
        identities.parquet each patient record (unit + patient_id) → the person it truly is, its variant
        summary.json       totals, rates and the definitions used
    manifest.json          month, scale, seed, versions, every file with encoding, rows, sha256

One CSV per unit per table (not per day): real-time uploads are visible in 数据采集时间, which is
30 s–5 min after the event for rows sent in real time and 3–20 h after it for the scheduled batch.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rhip.errors import Invalid
from rhip.lake.cluster import TASK_RETRIES, Job
from rhip.registry import catalogue
from rhip.synth import calibration, city, defects, residents, tables, usage, vec
from rhip.synth.defects import DefectRates
from rhip.synth.outputs import (
    SynthResult,
    UnitResult,
    write_institutions,
    write_manifest,
    write_statistics,
    write_summary,
)
from rhip.synth.tablewriter import Run, TableWriter, Truth
from rhip.synth.writer import FileEntry

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
RESIDENTS_PER_SCALE = 3_000_000  # residents of the synthetic city at scale 1.0
MIN_RESIDENTS = 5_000


def _check_args(month: str, scale: float, out: Path, gbk_share: float) -> None:
    if not isinstance(month, str) or not MONTH_RE.match(month):
        raise Invalid(f"月份格式错误：{month!r}，应为 YYYY-MM（如 2025-03）", code="bad-month")
    if not isinstance(scale, int | float) or not np.isfinite(scale) or scale <= 0:
        raise Invalid(f"规模必须大于 0：{scale!r}", code="bad-scale")
    if scale > 2:
        raise Invalid(f"规模 {scale} 过大：最大为 2（1.0 即简报的全市数据量）", code="bad-scale")
    if not 0 <= gbk_share <= 1:
        raise Invalid(f"GBK 文件比例必须在 0 到 1 之间：{gbk_share!r}", code="bad-gbk-share")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".rhip-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise Invalid(f"输出目录不可写：{out}（{exc.strerror or exc}）", code="unwritable-output") from None


def _factors(rates: DefectRates) -> dict[str, float]:
    """Rows sent per valid record, per table (extras for the rules that apply, versions, re-sends)."""
    out = {}
    for ds in catalogue.datasets():
        t = defects.targets(ds)
        extra = sum(rates.rate(r) for r in defects.ROW_RULES if t.by_rule[r])
        out[ds.name] = 1 + extra + rates.duplicate + rates.modified + 2 * rates.revoked
    return out


def _ghosts(n_stays: int, rates: DefectRates) -> int:
    """Extra stays whose admission numbers key the extra rows of tables keyed by 住院流水号."""
    if not n_stays:
        return 0
    per = 0.0
    for ds in catalogue.datasets():
        t = defects.targets(ds)
        if t.key_is_link:
            per = max(per, sum(rates.rate(r) for r in defects.ROW_RULES if t.by_rule[r]) + rates.revoked)
    return int(np.ceil(n_stays * per * 1.5)) + 3


def generate(
    *,
    month: str,
    scale: float,
    seed: int,
    out: Path,
    gbk_share: float = 0.1,
    console: Console | None = None,
    defects: DefectRates | None = None,
    institutions: Sequence[str] | None = None,
    job: Job | None = None,
) -> SynthResult:
    """Synthesise a city month: residents, every uploading unit's files and the ground truth.

    `institutions` (机构代码) limits the output to those units; each unit's files are the same bytes
    as in a full run, since every random draw is keyed by seed, unit and table. With a `job` on a Dask
    cluster every unit is a task that writes its files on a worker (the largest first) and the ground truth
    is joined in the units' order: the output is byte-for-byte the single process's.
    """
    out = Path(out)
    _check_args(month, scale, out, gbk_share)
    started = time.perf_counter()
    rates = defects or DefectRates()
    m = city.Month.of(month)
    targets = calibration.targets(month, scale)
    plans = city.plans(m, targets, seed=seed, gbk_share=gbk_share, rates=rates)
    if institutions is not None:
        wanted = set(institutions)
        unknown = wanted - {p.code for p in plans}
        if unknown:
            raise Invalid(f"本月没有这些接入单位：{'、'.join(sorted(unknown))}", code="unknown-institution")
        plans = [p for p in plans if p.code in wanted]
    n_res = max(MIN_RESIDENTS, round(scale * RESIDENTS_PER_SCALE))

    uploads = out / "uploads"
    if uploads.exists():
        for p in sorted(uploads.rglob("*.csv")):
            p.unlink()
    total = sum(p.target.uploads for p in plans)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=console or Console(quiet=True), disable=console is None, transient=False
    ) as progress:
        task = progress.add_task(f"合成 {month}", total=total)
        if job is None or job.client is None:
            pop = residents.make(n_res, ref_day=m.start_day, seed=seed)
            pq.write_table(pop.table(), out / "residents.parquet")
            truth = Truth(out / "ground_truth")
            part = _units(
                plans,
                run=Run(out=out, month=m, seed=seed, rates=rates, truth=truth),
                pop=pop,
                factors=_factors(rates),
                progress=lambda desc, n: progress.update(
                    task, description=f"合成 {month} · {desc}", advance=n
                ),
            )
            parts = [part]
            truth.close()
        else:
            job.progress = lambda done, n: progress.update(
                task,
                description=f"合成 {month} · {done}/{n} 个单位（{job.workers} 个进程）",
                completed=total * done // max(n, 1),
            )
            parts = _on_cluster(job, plans, month=month, seed=seed, rates=rates, out=out, n_res=n_res)
        progress.update(task, description=f"合成 {month} · 完成", completed=total)
    entries = [e for part in parts for e in part.entries]
    units = [u for part in parts for u in part.units]
    table_rows: Counter[str] = Counter()
    defect_counts: Counter[str] = Counter()
    for part in parts:
        table_rows.update(part.table_rows)
        defect_counts.update(part.defects)

    write_statistics(out, month, plans)
    usage.write_record_usage(out, month, plans, seed=seed)
    result = SynthResult(
        month=month,
        source_month=calibration.source_month(month),
        scale=scale,
        seed=seed,
        out=out,
        gbk_share=gbk_share,
        residents=n_res,
        rows=sum(e.rows for e in entries),
        files=len(entries),
        gbk_files=sum(e.encoding == "gbk" for e in entries),
        seconds=0.0,
        units=units,
        tables=dict(table_rows),
        defects=dict(sorted(defect_counts.items())),
    )
    write_institutions(out, result, plans, m)
    write_summary(out, result, rates)
    write_manifest(out, result, entries, rates)
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class Part:
    """What one group of units produced: its files, per-unit results and counts, its truth rows per table."""

    entries: list[FileEntry]
    units: list[UnitResult]
    table_rows: Counter[str]
    defects: Counter[str]
    truth_tables: list[dict[str, Any]] = field(default_factory=list)


def _units(
    plans: Sequence[city.Plan],
    *,
    run: Run,
    pop: residents.Residents,
    factors: dict[str, float],
    progress: Callable[[str, int], None] | None = None,
) -> Part:
    """Write the files of these units in order, their truth through `run.truth`."""
    part = Part(entries=[], units=[], table_rows=Counter(), defects=Counter())
    m, seed, rates, truth = run.month, run.seed, run.rates, run.truth
    for plan in plans:
        if progress:
            progress(plan.name, 0)
        act = city.activity(
            plan, pop, m, seed=seed, rates=rates, ghosts=_ghosts(plan.target.discharges, rates)
        )
        run.act = act
        unit = tables.Unit(plan, act, pop, m, seed=seed, factors=factors)
        truth.identity(
            plan.code,
            vec.padded(np.arange(1, len(act.p_person) + 1), 10, "P"),
            act.p_person,
            vec.take(["", "homophone", "missing_id", "other_phone", "nl_merger"], act.p_variant),
            True,
        )
        rows_before = sum(e.rows for e in part.entries)
        days: set[int] = set()
        forms: list[str] = []
        unit_defects: Counter[str] = Counter()
        for ds in catalogue.datasets():
            n = unit.size(ds.name)
            if n == 0:
                continue
            w = TableWriter(run, plan, unit, ds)
            for lo in range(0, n, tables.CHUNK):
                hi = min(n, lo + tables.CHUNK)
                rows = unit.rows(ds.name, lo, hi)
                tgen = vec.rng(seed, "timing", plan.code, ds.name, lo)
                tbl, rt, collected = tables.text_table(ds, unit, rows, tgen)
                w.add(tbl, rt, collected, rows.patient, lo)
                if progress:
                    progress(plan.name, tbl.num_rows)
            new = w.close()
            truth.flush()
            part.entries.extend(new)
            part.table_rows[ds.name] += sum(e.rows for e in new)
            unit_defects.update(w.counts)
            if ds.realtime and w.rt_rows:
                days |= w.rt_days
                forms.append(ds.name)
        part.defects.update(unit_defects)
        part.units.append(
            UnitResult(
                code=plan.code,
                name=plan.name,
                kind=plan.target.kind,
                encoding=plan.encoding,
                rows=sum(e.rows for e in part.entries) - rows_before,
                uploads_target=plan.target.uploads,
                visits=len(act.v_time),
                visit_revenue_fen=int(act.v_fee.sum()),
                discharges=act.n_stays,
                inpatient_revenue_fen=int(act.s_fee[: act.n_stays].sum()),
                upload_days=sorted(int(d) + 1 for d in days),
                forms=forms,
                defects=dict(sorted(unit_defects.items())),
            )
        )
    return part


@lru_cache(maxsize=1)
def _population(n_res: int, start_day: int, seed: int) -> residents.Residents:
    """The city's residents on a worker, kept for its next tasks of the run (one population at most)."""
    return residents.make(n_res, ref_day=start_day, seed=seed)


def _on_cluster(
    job: Job, plans: Sequence[city.Plan], *, month: str, seed: int, rates: DefectRates, out: Path, n_res: int
) -> list[Part]:
    """Every unit a task of its own, the largest first (the workers finish together on the small ones);
    the residents' file written by a worker too, so this process only joins the parts."""
    assert job.client is not None
    shutil.rmtree(out / "ground_truth" / ".parts", ignore_errors=True)  # a stopped run's
    pop_file = job.client.submit(
        _residents_task, month=month, seed=seed, out=out, n_res=n_res, retries=TASK_RETRIES, pure=False
    )
    order = sorted(range(len(plans)), key=lambda i: (-plans[i].target.uploads, i))
    got = job.run(
        _unit_task, [(i, plans[i]) for i in order], month=month, seed=seed, rates=rates, out=out, n_res=n_res
    )
    pop_file.result()
    by_unit = dict(zip(order, got, strict=True))
    parts = [by_unit[i] for i in range(len(plans))]
    merge_parts(out / "ground_truth", [_part_dir(out, i) for i in range(len(plans))], parts)
    return parts


def _residents_task(*, month: str, seed: int, out: Path, n_res: int) -> None:
    """residents.parquet, written on a worker."""
    pop = _population(n_res, city.Month.of(month).start_day, seed)
    pq.write_table(pop.table(), out / "residents.parquet")


def _part_dir(out: Path, i: int) -> Path:
    return out / "ground_truth" / ".parts" / f"{i:04d}"


def _unit_task(
    item: tuple[int, city.Plan], *, month: str, seed: int, rates: DefectRates, out: Path, n_res: int
) -> Part:
    """One cluster task: a unit's files written to the output folder, its truth in a part folder of its
    own (a retried task starts that folder again, and rewrites the same files with the same bytes); only
    the small summaries come back."""
    i, plan = item
    m = city.Month.of(month)
    truth = Truth(_part_dir(out, i))
    part = _units(
        [plan],
        run=Run(out=out, month=m, seed=seed, rates=rates, truth=truth),
        pop=_population(n_res, m.start_day, seed),
        factors=_factors(rates),
    )
    truth.close(tables_file=False)
    part.truth_tables = truth.table_rows
    return part


def merge_parts(root: Path, dirs: list[Path], parts: list[Part]) -> None:
    """The ground truth of a cluster run, joined in the units' order: each part's row groups copied as
    they are, so the files are the single process's bytes."""
    for name, schema in (
        ("defects.parquet", Truth.DEFECT_SCHEMA),
        ("identities.parquet", Truth.IDENTITY_SCHEMA),
    ):
        with pq.ParquetWriter(root / name, schema) as w:
            for d in dirs:
                # one read of the part, then its row groups written back as they were cut
                pf = pq.ParquetFile(d / name)
                whole = pf.read()
                at = 0
                for g in range(pf.num_row_groups):
                    n = pf.metadata.row_group(g).num_rows
                    w.write_table(whole.slice(at, n))
                    at += n
    Truth.write_tables(root, [r for part in parts for r in part.truth_tables])
    shutil.rmtree(root / ".parts")


# ------------------------------------------------------------------ presentation
