"""A small synthetic city month shared by the synth tests, and helpers that read its files back."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from rhip.synth import service

SCALE = 0.002
MONTH = "2025-03"


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> service.SynthResult:
    """The 2025-03 month at scale 0.002, generated once per session."""
    out = tmp_path_factory.mktemp("synth-city")
    return service.generate(month=MONTH, scale=SCALE, seed=20250331, out=out, gbk_share=0.2)


def manifest(out: Path) -> dict[str, Any]:
    """The manifest of a generated month."""
    data: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return data


def read_upload(out: Path, entry: dict[str, Any]) -> pl.DataFrame:
    """One upload file as all-text columns, decoded with the encoding the manifest states."""
    text = (out / entry["path"]).read_bytes().decode("gbk" if entry["encoding"] == "gbk" else "utf-8")
    return pl.read_csv(io.StringIO(text), infer_schema_length=0)


def uploads(out: Path) -> dict[tuple[str, str], pl.DataFrame]:
    """Every (org_code, table) → its rows from all its files, main file first."""
    frames: dict[tuple[str, str], list[pl.DataFrame]] = {}
    for e in manifest(out)["uploads"]:
        frames.setdefault((e["org_code"], e["table"]), []).append(
            read_upload(out, e).with_columns(pl.lit(e["path"]).alias("_file"))
        )
    return {k: pl.concat(v) for k, v in frames.items()}
