"""Reading the registry's data files, and the name keys every spelling of an institution or channel is
matched on (`normalize_name`: full-/half-width, spaces, "（含分院）"; `candidate_keys`: with or without the
"南京市"/"南京" prefix)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).with_name("data")

_WS = re.compile(r"\s+")
_TRAILING_BRACKET = re.compile(r"\([^()]*\)$")
_DROP_SUFFIXES = ("(含分院)", "含分院")


def normalize_name(text: str) -> str:
    """The matching key of a name: NFKC (full-width → half-width), no spaces, lower case, no "(含分院)"."""
    key = unicodedata.normalize("NFKC", text)
    key = _WS.sub("", key).lower()
    key = key.replace("【", "(").replace("】", ")")
    for suffix in _DROP_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            key = key[: -len(suffix)]
    return key


def normalize_code(text: str) -> str:
    """An institution code as stored: half-width, no spaces, upper case ("ｈ０２０ " → "H020")."""
    return normalize_name(text).upper()


def candidate_keys(text: str) -> list[str]:
    """Keys to try for a name, best first: itself, other 南京市/南京 prefixes, without a trailing (...)."""
    key = normalize_name(text)
    out: list[str] = []

    def add(k: str) -> None:
        if k and k not in out:
            out.append(k)

    def with_prefixes(k: str) -> None:
        add(k)
        core = k
        for prefix in ("南京市", "南京"):
            if core.startswith(prefix) and len(core) > len(prefix) + 1:
                core = core[len(prefix) :]
                break
        for variant in (core, "南京市" + core, "南京" + core):
            add(variant)

    with_prefixes(key)
    stripped = _TRAILING_BRACKET.sub("", key)
    if stripped != key and len(stripped) >= 2:
        with_prefixes(stripped)
    return out


def read_data(name: str) -> Any:
    """One of the registry's YAML data files, parsed."""
    return yaml.safe_load((DATA_DIR / name).read_text(encoding="utf-8"))


def aliases_of(raw: Any) -> tuple[str, ...]:
    """A data file's alias list as a tuple of strings (empty when absent)."""
    if not raw:
        return ()
    return tuple(str(a) for a in raw)
