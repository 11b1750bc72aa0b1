"""docs/datasets.md from the catalogue: the introduction (data/datasets_intro.md), then a reference part
generated from data/datasets.yaml and the code systems. `python -m rhip.registry.catalogue_doc --markdown`
prints it; without --markdown it checks the catalogue."""

from __future__ import annotations

import argparse
import sys

from rhip.registry import codes
from rhip.registry.catalogue import CATEGORY_LABELS, TYPE_LABELS, datasets, range_text, realtime_datasets
from rhip.registry.loading import DATA_DIR

INTRO = (DATA_DIR / "datasets_intro.md").read_text(encoding="utf-8")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown() -> str:
    """The catalogue's reference section as Markdown: summary table, then each table's fields."""
    systems = codes.code_systems()
    lines: list[str] = []
    lines.append("## 数据集一览")
    lines.append("")
    lines.append("| 数据集 | 名称 | 分类 | 实时 | 业务主键 | 事件时间 | CDA 文档 |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for d in datasets():
        lines.append(
            f"| [`{d.name}`](#{d.name}) | {d.label} | {CATEGORY_LABELS[d.category]} | "
            f"{'实时' if d.realtime else ''} | {', '.join(d.business_key)} | {d.event_time or '—'} | "
            f"{d.cda_document or '—'} |"
        )
    lines.append("")
    lines.append(
        f"实时数据表单（{len(realtime_datasets())} 张）：" + "、".join(d.label for d in realtime_datasets())
    )
    lines.append("")
    for d in datasets():
        lines.append(f"## {d.name}")
        lines.append("")
        lines.append(
            f"**{d.label}**（{CATEGORY_LABELS[d.category]}{'，实时数据表单' if d.realtime else ''}）。"
        )
        if d.description:
            lines.append(d.description)
        lines.append("")
        lines.append(f"- 业务主键：`org_code` + `{'` + `'.join(d.business_key)}`")
        lines.append(
            f"- 事件时间（按月分区、及时性）：`{d.event_time}`"
            if d.event_time
            else "- 事件时间：无（按 `updated_at` 分区）"
        )
        if d.cda_document:
            lines.append(f"- 对应共享文档：{d.cda_document}")
        for link in d.links:
            lines.append(
                f"- 引用：`{', '.join(link.fields)}` → `{link.dataset}.{', '.join(link.target_fields)}`"
            )
        lines.append("")
        lines.append("| 字段 | 中文名 | 类型 | 必填 | 代码系统 | 范围/长度 | 说明 |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for f in d.fields:
            system = ""
            if f.code_system:
                cs = systems.get(f.code_system)
                system = f"`{f.code_system}`" + (f" {cs.name}" if cs else "")
            lines.append(
                f"| `{f.name}` | {_md(f.label)} | {TYPE_LABELS[f.type]} | {'是' if f.required else ''} | "
                f"{system} | {_md(range_text(f))} | {_md(f.description)} |"
            )
        lines.append("")
    lines.append("## 代码系统")
    lines.append("")
    lines.append("| 代码系统 | 名称 | 标准 | 代码 |")
    lines.append("| --- | --- | --- | --- |")
    for cs in systems.values():
        if cs.external:
            shown = "（由机构注册库提供）"
        elif cs.id in ("icd10", "area"):
            shown = (
                f"{len(cs.codes)} 个，见 `registry/data/{'icd10' if cs.id == 'icd10' else 'codes_area'}.csv`"
            )
        else:
            shown = "；".join(f"{k} {v}" for k, v in cs.codes.items())
        lines.append(f"| `{cs.id}` | {cs.name} | {_md(cs.standard)} | {_md(shown)} |")
    lines.append("")
    return "\n".join(lines)


INTRO_MARKER = "<!-- 以下由 python -m rhip.registry.catalogue_doc --markdown 从 datasets.yaml 生成 -->"


def main(argv: list[str] | None = None) -> int:
    """CLI: print docs/datasets.md (--markdown), or check the catalogue."""
    parser = argparse.ArgumentParser(prog="python -m rhip.registry.catalogue_doc")
    parser.add_argument("--markdown", action="store_true", help="print docs/datasets.md (intro + reference)")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(INTRO + "\n" + INTRO_MARKER + "\n\n" + to_markdown())
        return 0
    items = datasets()
    print(f"{len(items)} datasets, {len(realtime_datasets())} real-time; catalogue is consistent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
