"""How often two different people would be flagged `high` as the same person: `python -m bench.name_precision`.

Generates distinct made-up people (bench.population's names: Zipf-weighted Belarusian given names and surnames,
dates of birth over 55 years; no two with the same written name and date of birth), writes about a third of those
whose given name is in a group of `services/intake/given_names.tsv` in another form of the group (Настя for
Настасся, Саша for Аляксандр), and counts the pairs of different people sharing a whole-name-and-birth key — the key
behind `confidence: high` (the blind index holds a keyed hash of exactly these keys, so the count is the index's).

Reported: people, false `high` pairs, the people in them, and how many of those pairs a table-less matcher (the
spelling rules only) would have flagged too — people who share a name as written and a birthday. Not a test: a
figure for the README and the issue.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections import defaultdict
from datetime import date, timedelta

from bench.population import People, group_forms
from services.intake import names

DEFAULT_PEOPLE = 100_000


def people(count: int, seed: int) -> list[tuple[str, date]]:
    """`count` distinct (name as written, date of birth)."""
    crowd, rnd = People(seed), random.Random(seed + 1)
    cyrillic = {group: [form for form in forms if not form.isascii()] for group, forms in group_forms().items()}
    seen: set[tuple[str, date]] = set()
    out: list[tuple[str, date]] = []
    while len(out) < count:
        given, surname = crowd.full_name().split(" ", 1)
        groups = names.word_alternatives(given)[0]
        if groups[0].startswith("=") and rnd.random() < 0.33:
            given = rnd.choice(cyrillic[groups[0]])
        born = date(1950, 1, 1) + timedelta(days=rnd.randrange(365 * 55))
        person = (f"{given} {surname}", born)
        if person not in seen:
            seen.add(person)
            out.append(person)
    return out


def _plain_keys(name: str) -> set[str]:
    """The spelling rules alone, no table of given names: what a matcher without it would join."""
    words = [names._skeleton(w, lacinka=False) for w in names._to_latin_letters(name.casefold()).split()]
    return {" ".join(sorted(w for w in words if w))}


def measure(count: int = DEFAULT_PEOPLE, seed: int = 2026) -> dict[str, float]:
    started = time.perf_counter()
    crowd = people(count, seed)
    by_key: dict[str, set[int]] = defaultdict(set)
    for index, (name, born) in enumerate(crowd):
        for key in names.name_and_birth_keys([name], born):
            by_key[key].add(index)
    pairs: set[tuple[int, int]] = set()
    for holders in by_key.values():
        if len(holders) > 1:
            pairs.update(itertools.combinations(sorted(holders), 2))
    plain = sum(1 for a, b in pairs if _plain_keys(crowd[a][0]) & _plain_keys(crowd[b][0]))
    involved = {i for pair in pairs for i in pair}
    return {"people": count, "false_high_pairs": len(pairs), "people_in_false_pairs": len(involved),
            "false_pairs_without_the_table_too": plain,
            "false_high_rate_per_person": len(involved) / count, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=DEFAULT_PEOPLE)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    for key, value in measure(args.people, args.seed).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
