"""The EMPI test city: patient records of the synthetic residents at many institutions, with the variants
registration desks produce, and the truth (which person each record is).

Variants (one per record at most): homophone names (李静/李晶), the local n/l, -n/-ng and z/zh c/ch s/sh
mergers, missing ID numbers, one-digit ID typos, adjacent-digit transpositions, old 15-digit numbers,
day/month swaps of the birth date, another phone, and newborns registered under their mother's ID.
The upload tables of `rhip synth` keep only the variants intake accepts as valid rows; these records
feed the identity model's training, the demo's accuracy check and benchmarks/empi.py.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from functools import cache

import numpy as np
import pyarrow as pa

from rhip.identity.features import loose_pinyin, pinyin
from rhip.synth import lexicon, residents, vec

INSTITUTIONS = [f"H{i:03d}" for i in range(1, 61)] + [f"C{i:03d}" for i in range(1, 41)]
DISTRICT_CODES = [code for code, _ in lexicon.DISTRICTS.values()] + [
    lexicon.METRO[c][1][0] for c in lexicon.METRO
]
REF_DAY = residents.day_number(date(2025, 3, 1))


@dataclass(frozen=True)
class IdentityRates:
    """Share of records carrying each variant (the synthetic city's defaults)."""

    homophone: float = 0.02
    nl_merger: float = 0.01
    missing_id: float = 0.02
    id_typo: float = 0.005
    id_transposition: float = 0.003
    id_15_digit: float = 0.01
    day_month_swap: float = 0.003
    other_phone: float = 0.03
    newborn_under_mother: float = 0.5  # of newborns' records

    def scaled(self, factor: float) -> IdentityRates:
        """Every record-level rate multiplied by `factor` (the newborn share kept)."""
        return replace(
            self,
            **{
                f.name: getattr(self, f.name) * factor
                for f in fields(self)
                if f.name != "newborn_under_mother"
            },
        )

    def only(self, **rates: float) -> IdentityRates:
        """These rates, every other record-level variant off."""
        zero = {f.name: 0.0 for f in fields(self) if f.name != "newborn_under_mother"}
        return replace(self, **{**zero, **rates})


VARIANTS = (
    "homophone",
    "nl_merger",
    "missing_id",
    "id_typo",
    "id_transposition",
    "id_15_digit",
    "day_month_swap",
    "other_phone",
)


@cache
def loose_map() -> dict[str, str]:
    """Given-name characters → characters a local ear confuses them with (same loose pinyin, other pinyin)."""
    by_loose: dict[str, list[str]] = {}
    for ch in residents.GIVEN:
        by_loose.setdefault(loose_pinyin(pinyin(ch)), []).append(ch)
    out: dict[str, str] = {}
    for group in by_loose.values():
        for ch in group:
            alts = "".join(o for o in group if pinyin(o) != pinyin(ch))
            if alts:
                out[ch] = alts
    return out


def nl_merger(name: str, gen: np.random.Generator) -> str:
    """The name with one given-name character heard the local way (n/l, -n/-ng, z/zh c/ch s/sh);
    unchanged when no character has such a twin."""
    table = loose_map()
    spots = [i for i, ch in enumerate(name) if i > 0 and ch in table]
    if not spots:
        return name
    i = spots[int(gen.integers(0, len(spots)))]
    alts = table[name[i]]
    return name[:i] + alts[int(gen.integers(0, len(alts)))] + name[i + 1 :]


def _typo(number: str, gen: np.random.Generator) -> str:
    pos = int(gen.integers(0, 17))
    return number[:pos] + str((int(number[pos]) + int(gen.integers(1, 10))) % 10) + number[pos + 1 :]


def _transpose(number: str, gen: np.random.Generator) -> str:
    spots = [i for i in range(16) if number[i] != number[i + 1]]
    i = spots[int(gen.integers(0, len(spots)))]
    return number[:i] + number[i + 1] + number[i] + number[i + 2 :]


@dataclass
class IdentityCity:
    """The records (an Arrow table) and the residents they belong to."""

    records: pa.Table
    population: residents.Residents


def make(
    n_persons: int, *, seed: int = 7, rates: IdentityRates | None = None, per_person: float = 1.0
) -> IdentityCity:
    """Records of `n_persons` residents: each has 1 + Poisson(per_person) records at random institutions."""
    rates = rates or IdentityRates()
    pop = residents.make(n_persons, ref_day=REF_DAY, seed=seed)
    gen = vec.rng(seed, "identity-records")
    k = 1 + gen.poisson(per_person, size=n_persons)
    person = np.repeat(np.arange(n_persons, dtype=np.int64), k)
    n = len(person)
    inst = gen.integers(0, len(INSTITUTIONS), size=n)
    names = pop.name.take(pa.array(person)).to_pylist()
    ids = pop.id_number.take(pa.array(person)).to_pylist()
    birth = pop.birth[person].astype(np.int64)
    sex = pop.sex[person].astype(np.int64)
    phone = pop.phone[person].copy()
    home = pop.home[person].astype(np.int64)
    probs = np.array([getattr(rates, v) for v in VARIANTS])
    u = gen.random(n)
    edges = np.cumsum(probs)
    variant = np.searchsorted(edges, u, side="right")  # len(VARIANTS) = none
    labels: list[str] = [""] * n
    prefixes = np.array(lexicon.PHONE_PREFIXES, np.int64)
    for i in np.flatnonzero(variant < len(VARIANTS)):
        v = VARIANTS[variant[i]]
        idn = ids[i]
        if v == "homophone":
            new = residents.homophone(names[i], gen)
            if new == names[i]:
                continue
            names[i] = new
        elif v == "nl_merger":
            new = nl_merger(names[i], gen) if names[i] else names[i]
            if new == names[i]:
                continue
            names[i] = new
        elif v == "missing_id":
            ids[i] = None
        elif v == "id_typo" and idn:
            ids[i] = _typo(idn, gen)
        elif v == "id_transposition" and idn:
            ids[i] = _transpose(idn, gen)
        elif v == "id_15_digit" and idn and idn[6:8] == "19":
            ids[i] = idn[:6] + idn[8:17]
        elif v == "day_month_swap":
            d = residents.EPOCH + timedelta(days=int(birth[i]))
            if d.day > 12 or d.day == d.month:
                continue
            birth[i] = residents.day_number(d.replace(month=d.day, day=d.month))
        elif v == "other_phone":
            phone[i] = prefixes[gen.integers(0, len(prefixes))] * 10**8 + gen.integers(0, 10**8)
        else:
            continue
        labels[i] = v
    # newborns (under a year) registered under a woman's ID number, with her phone and district
    age = REF_DAY - birth
    babies = np.flatnonzero((age >= 0) & (age < 365) & (gen.random(n) < rates.newborn_under_mother))
    women = np.flatnonzero(
        (pop.sex == 2) & ((REF_DAY - pop.birth) > 22 * 365) & ((REF_DAY - pop.birth) < 40 * 365)
    )
    if len(babies) and len(women):
        mothers = women[gen.integers(0, len(women), size=len(babies))]
        for i, m in zip(babies, mothers, strict=True):
            ids[i] = pop.id_number[int(m)].as_py()
            phone[i] = pop.phone[m]
            home[i] = pop.home[m]
            labels[i] = "newborn_under_mother"
    district = [DISTRICT_CODES[h] if h < len(DISTRICT_CODES) else None for h in home]
    counter = np.zeros(len(INSTITUTIONS), np.int64)
    local: list[str] = []
    for j in inst:
        counter[j] += 1
        local.append(f"P{counter[j]:010d}")
    order = gen.permutation(n)  # arrival order: not grouped by person
    table = pa.table(
        {
            "institution_code": vec.take(INSTITUTIONS, inst),
            "local_id": pa.array(local, pa.string()),
            "person": pa.array(person),
            "variant": pa.array(labels, pa.string()),
            "id_number": pa.array(ids, pa.string()),
            "name": pa.array(names, pa.string()),
            "birth_date": pa.array(birth.astype(np.int32)).cast(pa.date32()),
            "sex": vec.text(sex),
            "phone": vec.text(phone),
            "district": pa.array(district, pa.string()),
        }
    ).take(pa.array(order))
    return IdentityCity(records=table, population=pop)
