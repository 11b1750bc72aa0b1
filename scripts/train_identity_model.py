"""Train the identity model on the EMPI test city and save it as src/rhip/identity/data/model-<version>.json.

.venv/bin/python scripts/train_identity_model.py [--persons 100000] [--seed 11]
"""

from __future__ import annotations

import argparse
import time

from rhip.identity import train
from rhip.synth import identities


def main() -> None:
    """Generate records, derive features, estimate parameters with splink, save the model file."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    t0 = time.perf_counter()
    city = identities.make(args.persons, seed=args.seed)
    cols = ["id_number", "name", "birth_date", "sex", "phone", "district"]
    table = train.feature_rows(city.records.select(cols).to_pylist())
    settings = train.train(table)
    path = train.save(settings)
    print(f"{table.num_rows} records, trained in {time.perf_counter() - t0:.1f} s → {path}")


if __name__ == "__main__":
    main()
