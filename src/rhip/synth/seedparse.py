"""Parse the bulletins' data-collection tables into the calibration CSVs (run once, output committed).

Usage: ``python -m rhip.synth.seedparse [SEEDS_DIR]`` (default ``../shared/seeds``) writes
``src/rhip/synth/data/calibration_YYYY-MM.csv`` for every seed issue that has the tables
``YYYY 年 M 月南京市卫生信息平台数据采集情况（区|医院）``.

Every table is tokenised on white space; a row is an institution name followed by its cells.
Cells that the bulletin breaks over several lines (``未获取 卫统 数据``) are joined first. The
columns differ between issues; the CSV has one superset of columns and leaves what an issue lacks
empty. ``/`` in a cell (no figure) is kept as ``/``.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")

COLUMNS = [
    "month",
    "kind",
    "name",
    "uploads",
    "upload_days",
    "forms",
    "visits",
    "visit_revenue",
    "discharges",
    "inpatient_revenue",
    "visit_compliance",
    "discharge_compliance",
    "visit_upload_rate",
    "discharge_upload_rate",
    "declared_tables",
    "cda",
    "records_basic",
    "records_hypertension",
    "records_diabetes",
    "browser",
    "reminder",
]

# Cell order per (layout, kind); layout is chosen from the header words.
LAYOUTS: dict[str, dict[str, list[str]]] = {
    # 2025-02, 2025-03: 定时数据上传量 实时数据上传天数 实时数据表单上传情况 门急诊 人次 收入 出院 人次 收入
    "revenue": {
        "district": [
            "uploads",
            "upload_days",
            "forms",
            "visits",
            "visit_revenue",
            "discharges",
            "inpatient_revenue",
        ],
        "hospital": [
            "uploads",
            "upload_days",
            "forms",
            "visits",
            "visit_revenue",
            "discharges",
            "inpatient_revenue",
        ],
    },
    # 2022-08: 数据上传量 天数 表单 门急诊 人次 实时数据符合率 出院 人次 符合率 (+ 健康档案 for districts)
    "compliance": {
        "district": [
            "uploads",
            "upload_days",
            "forms",
            "visits",
            "visit_compliance",
            "discharges",
            "discharge_compliance",
            "records_basic",
            "records_hypertension",
            "records_diabetes",
        ],
        "hospital": [
            "uploads",
            "upload_days",
            "forms",
            "visits",
            "visit_compliance",
            "discharges",
            "discharge_compliance",
        ],
    },
    # 2020-05: 申明上传表/规定上传表 已上传表（CDA） 数据上传量 天数 门急诊人次 出院人次 (+ 健康档案)
    "declared": {
        "district": [
            "declared_tables",
            "cda",
            "uploads",
            "upload_days",
            "visits",
            "discharges",
            "records_basic",
            "records_hypertension",
            "records_diabetes",
        ],
        "hospital": ["declared_tables", "cda", "uploads", "upload_days", "visits", "discharges"],
    },
    # 2018-03: as 2020-05 plus 上传率（与卫统对比） and 浏览器/智能提示 部署数量/调用次数
    "rate": {
        "district": [
            "declared_tables",
            "cda",
            "uploads",
            "upload_days",
            "visits",
            "visit_upload_rate",
            "discharges",
            "discharge_upload_rate",
            "records_basic",
            "records_hypertension",
            "records_diabetes",
            "browser",
            "reminder",
        ],
        "hospital": [
            "declared_tables",
            "cda",
            "uploads",
            "upload_days",
            "visits",
            "visit_upload_rate",
            "discharges",
            "discharge_upload_rate",
            "browser",
            "reminder",
        ],
    },
}

_TITLE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*南京市卫生信息平台数据采集情况\s*（\s*(区|医院)\s*）")
_END = re.compile(r"（截止")
_CELL = re.compile(r"^(?:[\d.,%]+|/|[\d]+/[\d]+|未反馈/\d+|开库采集|NA|未部署/\d+)$")
_SPLIT_CELLS = [
    (re.compile(r"未获取\s*卫统\s*数据"), " NA "),
    (re.compile(r"未部署\s*/\s*(\d+)"), r"未部署/\1"),
]


def _layout(text: str) -> str:
    if "收入（千元）" in text:
        return "revenue"
    if "符合率" in text:
        return "compliance"
    if "上传率" in text:
        return "rate"
    return "declared"


def sections(text: str) -> Iterator[tuple[str, str, str]]:
    """Yield (month, kind, section text) for each data-collection table in a bulletin."""
    titles = list(_TITLE.finditer(text))
    for i, m in enumerate(titles):
        start = m.end()
        stop = titles[i + 1].start() if i + 1 < len(titles) else len(text)
        end = _END.search(text, start, stop)
        body = text[start : end.start() if end else stop]
        month = f"{m.group(1)}-{int(m.group(2)):02d}"
        yield month, "district" if m.group(3) == "区" else "hospital", body


def parse_section(body: str, layout: str, kind: str) -> list[dict[str, str]]:
    """Rows of one table: each name token followed by exactly the layout's number of cells."""
    for pattern, repl in _SPLIT_CELLS:
        body = pattern.sub(repl, body)
    cols = LAYOUTS[layout][kind]
    rows: list[dict[str, str]] = []
    name: str | None = None
    cells: list[str] = []

    def flush() -> None:
        """Keep the row being read if it has exactly the layout's cells."""
        if name is not None and len(cells) == len(cols):
            rows.append({"name": name, **dict(zip(cols, cells, strict=True))})

    for token in body.split():
        if _CELL.match(token):
            cells.append(token)
        else:
            flush()
            name, cells = token, []
    flush()
    return rows


def parse_file(path: Path) -> dict[str, list[dict[str, str]]]:
    """All data-collection rows of one bulletin file, keyed by statistics month."""
    text = path.read_text(encoding="utf-8")
    layout = _layout(text[text.find("数据采集情况") :] if "数据采集情况" in text else text)
    out: dict[str, list[dict[str, str]]] = {}
    for month, kind, body in sections(text):
        for row in parse_section(body, layout, kind):
            out.setdefault(month, []).append({"month": month, "kind": kind, **row})
    return out


def write_csv(month: str, rows: list[dict[str, str]], data_dir: Path = DATA_DIR) -> Path:
    """Write one month's calibration CSV (UTF-8, header = COLUMNS)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"calibration_{month}.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({c: row.get(c, "") for c in COLUMNS})
    return path


def main(argv: list[str] | None = None) -> None:
    """Parse every seed file in a folder and write the calibration CSVs."""
    args = sys.argv[1:] if argv is None else argv
    seeds = Path(args[0]) if args else Path(__file__).resolve().parents[4] / "shared" / "seeds"
    if not seeds.is_dir():
        seeds = Path("../shared/seeds")
    for path in sorted(seeds.glob("*.txt")):
        for month, rows in parse_file(path).items():
            out = write_csv(month, rows)
            kinds = {k: sum(r["kind"] == k for r in rows) for k in ("district", "hospital")}
            print(f"{path.name}: {month} 区 {kinds['district']} 医院 {kinds['hospital']} → {out}")


if __name__ == "__main__":
    main()
