"""A section provider for the bulletin tests (a domain the bulletin code does not know)."""

from __future__ import annotations

from typing import Any


def bulletin_sections(*, session: Any, lake: Any, month: str) -> list[dict[str, Any]]:
    """Two sections, given out of order."""
    return [
        {
            "key": "fake.late",
            "title": "后面的栏目",
            "order": 20,
            "paragraphs": [f"{month} 的说明文字。"],
        },
        {
            "key": "fake.table",
            "title": "预约挂号服务统计",
            "order": 10,
            "tables": [
                {
                    "title": "预约挂号服务统计",
                    "sheet": "预约",
                    "columns": [
                        {"title": "单位"},
                        {"title": "在线", "group": "渠道", "kind": "int"},
                        {"title": "电话", "group": "渠道", "kind": "int"},
                        {"title": "金额（千元）", "kind": "decimal2"},
                        {"title": "符合率", "kind": "percent"},
                    ],
                    "rows": [["南京鼓楼医院", 6778, 1370, 12.5, 0.891], ["合计", 6778, 1370, 12.5, "/"]],
                    "notes": ["（截止本月，总预约挂号量为 37343914 次）"],
                }
            ],
        },
    ]


def broken_sections(*, session: Any, lake: Any, month: str) -> list[dict[str, Any]]:
    """A malformed section (a row too short)."""
    return [{"key": "x", "title": "坏", "tables": [{"title": "t", "columns": ["a", "b"], "rows": [[1]]}]}]
