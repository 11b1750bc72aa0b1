"""The synthetic residents: names, valid ID numbers, birth dates, sex, phones and addresses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from rhip.synth import lexicon, vec

EPOCH = date(1970, 1, 1)
HOMES: list[str] = list(lexicon.DISTRICTS) + list(lexicon.METRO)
N_DISTRICTS = len(lexicon.DISTRICTS)
GIVEN: list[str] = sorted(set(lexicon.GIVEN_MALE + lexicon.GIVEN_FEMALE))
_GIVEN_INDEX = {ch: i for i, ch in enumerate(GIVEN)}
_MALE = np.array([_GIVEN_INDEX[c] for c in lexicon.GIVEN_MALE], dtype=np.int32)
_FEMALE = np.array([_GIVEN_INDEX[c] for c in lexicon.GIVEN_FEMALE], dtype=np.int32)
OLD_CODE_SHARE = 0.8  # of residents born before a district's code changed who still hold the old code


@dataclass
class Residents:
    """Column arrays of every resident of the synthetic city; row i is person i."""

    sex: np.ndarray  # int8, GB/T 2261.1: 1 male, 2 female
    birth: np.ndarray  # int32 days since 1970-01-01
    home: np.ndarray  # int16 index into HOMES (Nanjing districts first, then metro cities)
    id17: np.ndarray  # int64, the first 17 digits of the ID number
    phone: np.ndarray  # int64, 11 digits
    name: pa.Array
    id_number: pa.Array
    address: pa.Array

    def __len__(self) -> int:
        return len(self.sex)

    def table(self) -> pa.Table:
        """The residents as an Arrow table (what residents.parquet holds)."""
        return pa.table(
            {
                "person_id": pa.array(np.arange(len(self), dtype=np.int64)),
                "name": self.name,
                "sex": pa.array(self.sex.astype(np.int8)),
                "birth_date": pa.array(self.birth.astype(np.int32)).cast(pa.date32()),
                "id_number": self.id_number,
                "phone": vec.text(self.phone),
                "home": vec.take(HOMES, self.home),
                "in_nanjing": pa.array(self.home < N_DISTRICTS),
                "address": self.address,
            }
        )


def _births(n: int, ref_day: int, gen: np.random.Generator) -> np.ndarray:
    bands = np.asarray(lexicon.AGE_BANDS, dtype=np.float64)
    band = gen.choice(len(bands), size=n, p=bands / bands.sum())
    age_days = (band * 5 + gen.random(n) * 5) * 365.2425
    return (ref_day - 1 - age_days).astype(np.int32)


def _area_codes(home: np.ndarray, birth: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    n = len(home)
    codes = np.zeros(n, dtype=np.int64)
    year = (birth.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.int64)
    u = gen.random(n)
    pick = gen.integers(0, 1 << 30, size=n)
    for h, district in enumerate(lexicon.DISTRICTS):
        current, old = lexicon.DISTRICTS[district]
        mask = home == h
        codes[mask] = int(current)
        for j, (code, ended) in enumerate(old):
            use = mask & (year < ended) & (u < OLD_CODE_SHARE) & (pick % len(old) == j)
            codes[use] = int(code)
    for k, city in enumerate(lexicon.METRO):
        mask = home == N_DISTRICTS + k
        county = np.array([int(c) for c in lexicon.METRO[city][1]], dtype=np.int64)
        codes[mask] = county[pick[mask] % len(county)]
    return codes


def _unique_id17(
    area: np.ndarray, birth: np.ndarray, sex: np.ndarray, gen: np.random.Generator
) -> np.ndarray:
    """17-digit ID bodies, unique across residents (collisions get a new sequence number)."""
    ymd = vec.compact_dates(birth)
    base = area * 10**11 + ymd * 1000
    seq = gen.integers(0, 500, size=len(area)) * 2 + (sex == 1)  # odd = male
    id17 = base + seq
    for _ in range(50):
        _, first = np.unique(id17, return_index=True)
        dup = np.ones(len(id17), dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        k = int(dup.sum())
        id17[dup] = base[dup] + gen.integers(0, 500, size=k) * 2 + (sex[dup] == 1)
    return np.asarray(id17, dtype=np.int64)


def names(surname: np.ndarray, given1: np.ndarray, given2: np.ndarray) -> pa.Array:
    """Names from index arrays: surname index, first and (or -1) second given-name character."""
    s = vec.take([s for s, _ in lexicon.SURNAMES], surname)
    g1 = vec.take(GIVEN, given1)
    g2 = vec.take(["", *GIVEN], given2 + 1)
    return vec.join(s, g1, g2)


def make(n: int, *, ref_day: int, seed: int) -> Residents:
    """Generate n residents living in Nanjing's districts and the metropolitan cities."""
    gen = vec.rng(seed, "residents")
    sex = np.where(gen.random(n) < 0.505, 1, 2).astype(np.int8)
    birth = _births(n, ref_day, gen)

    weights = np.array(list(lexicon.DISTRICT_WEIGHTS.values()), dtype=np.float64)
    weights = weights / weights.sum() * (1 - lexicon.METRO_SHARE)
    metro = np.full(len(lexicon.METRO), lexicon.METRO_SHARE / len(lexicon.METRO))
    p = np.concatenate([weights, metro])
    home = gen.choice(len(HOMES), size=n, p=p / p.sum()).astype(np.int16)

    sw = np.array([w for _, w in lexicon.SURNAMES], dtype=np.float64)
    surname = gen.choice(len(sw), size=n, p=sw / sw.sum())
    male = sex == 1
    pool_pick = gen.integers(0, 1 << 30, size=(2, n))
    given1 = np.where(male, _MALE[pool_pick[0] % len(_MALE)], _FEMALE[pool_pick[0] % len(_FEMALE)])
    given2 = np.where(male, _MALE[pool_pick[1] % len(_MALE)], _FEMALE[pool_pick[1] % len(_FEMALE)])
    single = gen.random(n) < 0.25  # a quarter of people have a one-character given name
    given2 = np.where(single, -1, given2)

    area = _area_codes(home, birth, gen)
    id17 = _unique_id17(area, birth, sex, gen)

    prefixes = np.array(lexicon.PHONE_PREFIXES, dtype=np.int64)
    phone = prefixes[gen.integers(0, len(prefixes), size=n)] * 10**8 + gen.integers(0, 10**8, size=n)

    return Residents(
        sex=sex,
        birth=birth,
        home=home,
        id17=id17,
        phone=phone,
        name=names(surname, given1, given2),
        id_number=vec.id_numbers(id17),
        address=_addresses(home, gen),
    )


def _addresses(home: np.ndarray, gen: np.random.Generator) -> pa.Array:
    n = len(home)
    place: list[str] = []
    roads: list[str] = []
    road_of = np.zeros(n, dtype=np.int64)
    pick = gen.integers(0, 1 << 30, size=n)
    for h, district in enumerate(lexicon.DISTRICTS):
        mask = home == h
        rs = lexicon.ROADS[district]
        road_of[mask] = len(roads) + pick[mask] % len(rs)
        roads.extend(rs)
        place.extend([f"江苏省南京市{district}"] * len(rs))
    for k, city in enumerate(lexicon.METRO):
        province, _, rs = lexicon.METRO[city]
        mask = home == N_DISTRICTS + k
        road_of[mask] = len(roads) + pick[mask] % len(rs)
        roads.extend(rs)
        place.extend([f"{province}{city}"] * len(rs))
    number = vec.text(gen.integers(1, 400, size=n))
    building = vec.text(gen.integers(1, 40, size=n))
    room = vec.text(gen.integers(1, 30, size=n) * 100 + gen.integers(1, 5, size=n))
    return vec.join(
        vec.take(place, road_of), vec.take(roads, road_of), number, "号", building, "幢", room, "室"
    )


def homophone(name: str, gen: np.random.Generator) -> str:
    """The name with one character replaced by a homophone (unchanged when none applies)."""
    table = _HOMOPHONES
    spots = [i for i, ch in enumerate(name) if ch in table]
    if not spots:
        return name
    i = spots[int(gen.integers(0, len(spots)))]
    alts = table[name[i]]
    return name[:i] + alts[int(gen.integers(0, len(alts)))] + name[i + 1 :]


_HOMOPHONES = lexicon.homophone_map()


def typo_id(id_number: str, gen: np.random.Generator) -> str:
    """The ID number with one sequence digit changed, so the check character no longer fits."""
    pos = int(gen.integers(14, 16))  # not the date (would be a date error) nor the sex digit
    digit = int(id_number[pos])
    new = (digit + int(gen.integers(1, 10))) % 10
    return id_number[:pos] + str(new) + id_number[pos + 1 :]


def day_number(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days
