"""The server-side SVG charts: valid XML, accessible, every value stated."""

from __future__ import annotations

from lxml import etree

from rhip.charts import Series, bar_chart, hbar_chart, line_chart

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> etree._Element:
    return etree.fromstring(svg.encode())


def test_bar_chart_states_every_value_and_is_an_image() -> None:
    svg = bar_chart("按渠道预约", ["12320", "诊间"], [Series("3月", [1200, 35.5])], unit="人次")
    root = _parse(svg)
    assert root.get("role") == "img"
    desc = root.find(f"{NS}desc").text
    assert "12320 1,200人次" in desc and "诊间 35.50人次" in desc
    assert len(root.findall(f"{NS}rect")) == 2
    assert "<script" not in svg


def test_stacked_and_grouped_bars_differ_in_layout() -> None:
    ss = [Series("甲", [1, 2]), Series("乙", [3, 4])]
    grouped = _parse(bar_chart("t", ["a", "b"], ss))
    stacked = _parse(bar_chart("t", ["a", "b"], ss, stacked=True))
    xs = lambda r: [q.get("x") for q in r.findall(f"{NS}rect")[:2]]  # noqa: E731
    assert xs(grouped)[0] != xs(grouped)[1]
    assert xs(stacked)[0] == xs(stacked)[1]


def test_escapes_names_and_handles_empty_and_zero() -> None:
    svg = hbar_chart("<机构>", ["A&B医院"], [0])
    root = _parse(svg)
    assert root.find(f"{NS}title").text == "<机构>"
    assert _parse(line_chart("空", [], [])).get("role") == "img"
    assert "1,000" in line_chart(
        "日", ["03-01", "03-02"], [Series("批量", [1000, 0]), Series("实时", [3, 4])]
    )
