# ruff: noqa: E501
"""ECG and slide attachments: 12-lead ECG records in WFDB format (the `wfdb` package reads and writes them),
a synthetic 12-lead generator for the demo, the strip drawn as accessible SVG on the reading page, and
pathology slide images (PNG or JPEG)."""

from __future__ import annotations

import math
import random
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import wfdb
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Invalid
from rhip.telemed import service as svc
from rhip.telemed.models import Attachment

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
# relative amplitudes of P, R, S, T per lead (a plausible normal axis)
SHAPE = {
    "I": (0.1, 0.8, -0.1, 0.25), "II": (0.15, 1.2, -0.2, 0.35), "III": (0.05, 0.5, -0.15, 0.1),
    "aVR": (-0.1, -0.9, 0.1, -0.3), "aVL": (0.05, 0.3, -0.1, 0.1), "aVF": (0.1, 0.8, -0.15, 0.2),
    "V1": (0.05, 0.3, -1.0, 0.1), "V2": (0.08, 0.6, -1.2, 0.4), "V3": (0.08, 0.9, -0.8, 0.45),
    "V4": (0.1, 1.4, -0.5, 0.45), "V5": (0.1, 1.3, -0.3, 0.35), "V6": (0.1, 1.0, -0.2, 0.3),
}  # fmt: skip


def synth_signal(
    *, seconds: float = 10.0, fs: int = 500, heart_rate: float = 72.0, seed: int = 0
) -> np.ndarray:
    """A synthetic 12-lead ECG (mV), samples × 12: Gaussian P, QRS and T waves per beat, slight noise."""
    rng = random.Random(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    out = np.zeros((n, len(LEADS)))
    rr = 60.0 / heart_rate
    beat = 0.3
    while beat < seconds:
        for j, lead in enumerate(LEADS):
            p, r, s, tw = SHAPE[lead]
            out[:, j] += p * np.exp(-(((t - beat + 0.16) / 0.025) ** 2))
            out[:, j] += r * np.exp(-(((t - beat) / 0.012) ** 2))
            out[:, j] += s * np.exp(-(((t - beat - 0.03) / 0.012) ** 2))
            out[:, j] += tw * np.exp(-(((t - beat - 0.28) / 0.05) ** 2))
        beat += rr * (1 + rng.uniform(-0.03, 0.03))
    noise = np.random.default_rng(seed).normal(0, 0.01, out.shape)
    return np.round(out + noise, 4)


def write_record(folder: Path, name: str, signal: np.ndarray, fs: int = 500) -> Path:
    """Write a WFDB record (name.hea + name.dat, 16-bit) into folder; its base path."""
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * signal.shape[1],
        sig_name=list(LEADS[: signal.shape[1]]),
        p_signal=signal,
        fmt=["16"] * signal.shape[1],
        write_dir=str(folder),
    )
    return folder / name


def read_record(base: Path) -> tuple[np.ndarray, int, list[str]]:
    """The signal (mV), sampling frequency and lead names of a WFDB record; Invalid when unreadable."""
    try:
        rec = wfdb.rdrecord(str(base))
    except (ValueError, OSError, IndexError, TypeError) as exc:
        raise Invalid(f"无法读取 WFDB 心电记录：{exc}", code="bad-wfdb") from None
    if rec.p_signal is None or rec.fs is None:
        raise Invalid("WFDB 心电记录没有信号", code="bad-wfdb")
    return np.asarray(rec.p_signal), int(rec.fs), list(rec.sig_name or [])


def _check_name(name: str) -> str:
    stem = Path(name).stem
    if not stem or not all(ch.isalnum() or ch in "_-" for ch in stem):
        raise Invalid(f"文件名“{name}”只能含字母、数字、下划线和连字符", code="bad-name")
    return stem


def attach_ecg(
    session: Session,
    *,
    request_id: int,
    folder: Path,
    header: bytes,
    data: bytes,
    name: str,
    at: datetime | None = None,
) -> Attachment:
    """Attach a WFDB record (header .hea and signal .dat) to an ECG request, after reading it back."""
    req = svc.get_request(session, request_id=request_id)
    if req.centre_code != "ecg":
        raise Invalid("只有心电申请可以附加心电记录", code="not-ecg")
    stem = _check_name(name)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / stem
        (Path(tmp) / f"{stem}.hea").write_bytes(header)
        (Path(tmp) / f"{stem}.dat").write_bytes(data)
        signal, fs, leads = read_record(base)
        target = folder / f"req{req.id}"
        target.mkdir(parents=True, exist_ok=True)
        for ext in ("hea", "dat"):
            shutil.copyfile(Path(tmp) / f"{stem}.{ext}", target / f"{stem}.{ext}")
    att = Attachment(
        request_id=req.id,
        kind="ecg",
        name=stem,
        content_type="application/x-wfdb",
        path=str(target / stem),
        size=len(header) + len(data),
        meta={"fs": fs, "leads": leads, "seconds": round(signal.shape[0] / fs, 2)},
        created_at=at or clock.now(),
    )
    session.add(att)
    session.flush()
    return att


GRID5 = 'stroke="#e8a0a0" stroke-width="0.6"'
GRID1 = 'stroke="#f8dcdc" stroke-width="0.3"'
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": ("image/png", ".png"), b"\xff\xd8\xff": ("image/jpeg", ".jpg")}


def attach_slide(
    session: Session, *, request_id: int, folder: Path, name: str, data: bytes, at: datetime | None = None
) -> Attachment:
    """Attach a pathology slide image (PNG or JPEG) to a pathology request."""
    req = svc.get_request(session, request_id=request_id)
    if req.centre_code != "pathology":
        raise Invalid("只有病理申请可以附加切片图像", code="not-pathology")
    kind = next((v for k, v in IMAGE_MAGIC.items() if data.startswith(k)), None)
    if kind is None:
        raise Invalid("切片图像必须是 PNG 或 JPEG 文件", code="bad-image")
    stem = _check_name(name)
    target = folder / f"req{req.id}"
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{stem}{kind[1]}"
    path.write_bytes(data)
    att = Attachment(
        request_id=req.id,
        kind="slide",
        name=stem,
        content_type=kind[0],
        path=str(path),
        size=len(data),
        meta=None,
        created_at=at or clock.now(),
    )
    session.add(att)
    session.flush()
    return att


def strip_svg(att: Attachment) -> str:
    """The strip of an attached WFDB record (see strip_svg_of)."""
    signal, fs, leads = read_record(Path(att.path))
    return strip_svg_of(signal, fs, leads, key=str(att.id), name=att.name)


def strip_svg_of(
    signal: np.ndarray,
    fs: int,
    leads: list[str],
    *,
    key: str,
    name: str,
    seconds: float = 2.5,
    mm_per_s: float = 25.0,
    mm_per_mv: float = 10.0,
    px_per_mm: float = 3.0,
) -> str:
    """The 12-lead strip as SVG: 3 rows × 4 columns of 2.5 s (I II III | aVR aVL aVF | V1–V3 | V4–V6) and a
    10 s lead II rhythm strip, on the usual 1 mm / 5 mm grid (25 mm/s, 10 mm/mV)."""
    idx = {name: i for i, name in enumerate(leads)}
    col_w = seconds * mm_per_s * px_per_mm
    row_h = 30 * px_per_mm
    total_s = min(signal.shape[0] / fs, 10.0)
    width = max(4 * col_w, total_s * mm_per_s * px_per_mm)
    height = 4 * row_h
    parts = [
        f'<svg class="ecg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" role="img" aria-labelledby="ecg-t{key}"><title id="ecg-t{key}">12 导联心电图 {name}（{fs} Hz，25 mm/s，10 mm/mV）</title>'
    ]
    grid = []
    step = px_per_mm
    for k in range(int(width / step) + 1):
        x = k * step
        grid.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height:.0f}" {GRID5 if k % 5 == 0 else GRID1}/>'
        )
    for k in range(int(height / step) + 1):
        y = k * step
        grid.append(
            f'<line x1="0" y1="{y:.1f}" x2="{width:.0f}" y2="{y:.1f}" {GRID5 if k % 5 == 0 else GRID1}/>'
        )
    parts.append('<g class="grid">' + "".join(grid) + "</g>")
    layout = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]

    def trace(lead: str, x0: float, y0: float, t0: float, t1: float) -> str:
        if lead not in idx:
            return ""
        a, b = int(t0 * fs), min(int(t1 * fs), signal.shape[0])
        ys = signal[a:b, idx[lead]]
        stride = max(1, math.ceil(len(ys) / 600))
        pts = " ".join(
            f"{x0 + (k * stride / fs) * mm_per_s * px_per_mm:.1f},{y0 - ys[k * stride] * mm_per_mv * px_per_mm:.1f}"
            for k in range(len(ys) // stride)
        )
        return f'<polyline fill="none" stroke="#111" stroke-width="1.1" points="{pts}"/><text x="{x0 + 4:.0f}" y="{y0 - row_h * 0.32:.0f}" font-size="12">{lead}</text>'

    for r, row in enumerate(layout):
        for c, lead in enumerate(row):
            parts.append(trace(lead, c * col_w, (r + 0.6) * row_h, c * seconds, (c + 1) * seconds))
    parts.append(trace("II", 0, 3.6 * row_h, 0, total_s))
    parts.append("</svg>")
    return "".join(parts)
