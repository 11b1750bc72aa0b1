"""Reading a Bundle's identifiers and references (FHIR R4 §3.1.0.11, transaction processing): the national
ID among a resource's identifiers, the business key an entry carries, conditional requests
(`ifNoneExist`, `PUT Type?identifier=`), and `Refs`, which resolves a Reference to another entry of the
Bundle (by `fullUrl`, `Type/id`, a conditional or an identifier) and to that entry's business key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from rhip.fhir.elements import ID_NUMBER_SYSTEM, INPATIENT_NO_SYSTEM, V2_0203


@dataclass
class Conditional:
    """A conditional interaction of one entry: `ifNoneExist` (create) or `PUT Type?identifier=` (update)."""

    kind: str  # "create" | "update"
    type: str
    system: str | None
    value: str


def obj(value: Any) -> dict[str, Any]:
    """The value when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def typed(ident: dict[str, Any], code: str) -> bool:
    """Whether an identifier is typed with this v2-0203 code (NNCHN, MR)."""
    for c in obj(ident.get("type")).get("coding") or []:
        if isinstance(c, dict) and c.get("code") == code and c.get("system") in (V2_0203, None):
            return True
    return False


def idents(res: dict[str, Any]) -> list[dict[str, Any]]:
    """A resource's identifiers that carry a value."""
    return [i for i in res.get("identifier") or [] if isinstance(i, dict) and i.get("value")]


def id_number(res: dict[str, Any]) -> str | None:
    """The national ID (身份证号): system urn:oid:2.16.156.10011.1.3, or an identifier typed v2-0203 NNCHN."""
    for i in idents(res):
        if i.get("system") == ID_NUMBER_SYSTEM or typed(i, "NNCHN"):
            return str(i["value"])
    return None


def business_id(res: dict[str, Any], rtype: str) -> str | None:
    """The business key an entry carries itself: its id; a Patient's MR-typed identifier; another
    resource's first identifier."""
    rid = res.get("id")
    if isinstance(rid, str) and rid:
        return rid
    found = idents(res)
    if rtype == "Patient":
        return next((str(i["value"]) for i in found if typed(i, "MR")), None)
    if rtype == "Encounter":
        found = [i for i in found if i.get("system") != INPATIENT_NO_SYSTEM] or found
    return str(found[0]["value"]) if found else None


def parse_condition(text: str) -> tuple[str, str | None, str] | None:
    """`[Type?]identifier=system|value` → (type or "", system, value); None when it is not one."""
    rtype, _, query = text.partition("?") if "?" in text else ("", "", text)
    values = parse_qs(query).get("identifier")
    if not values or not values[0]:
        return None
    system, sep, value = values[0].rpartition("|")
    if not value:
        return None
    return rtype.rsplit("/", 1)[-1], (system or None) if sep else None, value


def conditionals(bundle: Any) -> dict[int, Conditional]:
    """The entries whose request is conditional (`ifNoneExist`, or PUT with a search URL)."""
    out: dict[int, Conditional] = {}
    if not isinstance(bundle, dict) or not isinstance(bundle.get("entry"), list):
        return out
    for i, e in enumerate(bundle["entry"]):
        req = obj(e.get("request")) if isinstance(e, dict) else {}
        res = obj(e.get("resource")) if isinstance(e, dict) else {}
        rtype = str(res.get("resourceType") or "")
        url, method = req.get("url"), str(req.get("method") or "").upper()
        if isinstance(req.get("ifNoneExist"), str) and method == "POST":
            got = parse_condition(req["ifNoneExist"])
            if got:
                out[i] = Conditional("create", rtype, got[1], got[2])
        elif method == "PUT" and isinstance(url, str) and "?" in url:
            got = parse_condition(url)
            if got:
                out[i] = Conditional("update", rtype, got[1], got[2])
    return out


class Refs:
    """Reference resolution within one Bundle (fullUrl, Type/id, conditional and identifier references)."""

    def __init__(self, entries: list[Any], resources: list[dict[str, Any]], keys: list[str | None]) -> None:
        self.resources, self.keys = resources, keys
        self.full: dict[str, int] = {}
        self.typed: dict[str, int] = {}
        for i, (e, r) in enumerate(zip(entries, resources, strict=True)):
            url = e.get("fullUrl") if isinstance(e, dict) else None
            if isinstance(url, str) and url:
                self.full[url] = i
                if not url.startswith("urn:"):
                    self.typed.setdefault(tail(url), i)
            if isinstance(r.get("id"), str) and r["id"]:
                self.typed[f"{r.get('resourceType')}/{r['id']}"] = i
        self.unresolved: dict[int, list[str]] = {}
        self._memo: dict[str, tuple[int | None, str | None, bool]] = {}

    def entry(self, ref: Any) -> int | None:
        """The entry a Reference points to, when it is one of the Bundle's."""
        if not isinstance(ref, dict):
            return None
        r = ref.get("reference")
        if isinstance(r, str) and r:
            return self._literal(r)[0]
        ident = ref.get("identifier")
        if isinstance(ident, dict) and ident.get("value"):
            return self._by_identifier(str(ref.get("type") or ""), ident.get("system"), str(ident["value"]))
        return None

    def _by_identifier(self, rtype: str, system: str | None, value: str) -> int | None:
        for i, r in enumerate(self.resources):
            if rtype and r.get("resourceType") != rtype:
                continue
            for ident in idents(r):
                if str(ident["value"]) == value and (system is None or ident.get("system") == system):
                    return i
        return None

    def _literal(self, r: str) -> tuple[int | None, str | None, bool]:
        """(entry, key, unresolvable) of a literal reference, memoised: a Bundle names the same patient and
        encounter from many entries."""
        hit = self._memo.get(r)
        if hit is not None:
            return hit
        i: int | None = self.full.get(r)
        key: str | None = None
        bad = False
        if i is None:
            if r.startswith(("urn:uuid:", "urn:oid:")):
                bad = True
            elif r.startswith("#"):
                pass  # a contained resource: nothing to link
            elif "?" in r:
                got = parse_condition(r)
                i = self._by_identifier(r.split("?")[0], got[1], got[2]) if got else None
                if i is None:
                    bad = not got or got[1] == ID_NUMBER_SYSTEM
                    key = None if bad or not got else got[2]
            else:
                typed_id = tail(r)
                i = self.typed.get(typed_id)
                key = typed_id.rsplit("/", 1)[-1]
        if i is not None:
            key = self.keys[i]
        self._memo[r] = (i, key, bad)
        return i, key, bad

    def key(self, ref: Any, at: int) -> str | None:
        """The business key a Reference resolves to (an unresolvable `urn:` reference noted on entry `at`)."""
        if not isinstance(ref, dict):
            return None
        r = ref.get("reference")
        if isinstance(r, str) and r:
            _i, key, bad = self._literal(r)
            if bad:
                self.unresolved.setdefault(at, []).append(r)
            return key
        i = self.entry(ref)
        if i is not None:
            return self.keys[i]
        ident = ref.get("identifier")
        if isinstance(ident, dict) and ident.get("value"):
            return str(ident["value"])
        return None


def tail(url: str) -> str:
    """`Type/id` of a relative or absolute literal reference (a `_history/n` suffix dropped)."""
    parts = url.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return "/".join(parts[-2:])
