"""Made-up people to register: Belarusian names with a realistic spread, so that searches by name meet the kind
of crowd they would meet in a real registry (many people sharing common given names and surnames).

Given names and surnames are weighted Zipf-like (exponent 0.5): the most common given name is worn by about 7% of
people, the most common surname by about 1%, roughly as in Belarus. Surnames are built from stems and the usual
Belarusian endings; the names in the team's `shared/data/name-variants.csv` are among them when that folder is
found (REHAB_SHARED_DATA, or `../shared/data` beside the checkout, as the tests look for it). No name here
describes a real person.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
from collections.abc import Iterator
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.harness import REPO_ROOT

SHARED_DATA = Path(os.environ.get("REHAB_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")

GIVEN_NAMES = (
    "Аляксандр", "Сяргей", "Дзмітрый", "Андрэй", "Аляксей", "Уладзімір", "Мікалай", "Ігар", "Павел", "Віктар",
    "Юрый", "Міхаіл", "Максім", "Дзяніс", "Артур", "Раман", "Васіль", "Яўген", "Алег", "Антон", "Віталь", "Вадзім",
    "Кірыла", "Пятро", "Ілья", "Станіслаў", "Тарас", "Францішак", "Зміцер", "Алесь",
    "Вольга", "Наталля", "Таццяна", "Алена", "Святлана", "Ірына", "Кацярына", "Марыя", "Юлія", "Ганна", "Людміла",
    "Валянціна", "Надзея", "Вераніка", "Дар'я", "Паліна", "Марына", "Настасся", "Ала", "Галіна", "Ксенія",
    "Аксана", "Яна", "Лілія", "Алеся", "Крысціна", "Рыта", "Эльвіра", "Багдана", "Ядвіга",
)
SURNAME_STEMS = (
    "Мароз", "Кузняц", "Сцяпан", "Багдан", "Гурын", "Шушкев", "Лукаш", "Мельн", "Жук", "Навум", "Рыбак", "Васіл",
    "Каваль", "Ковал", "Шаўц", "Карп", "Бондар", "Ткач", "Новік", "Кравец", "Лысен", "Марчук", "Саўчук", "Палян",
    "Гаўрыл", "Дамбр", "Зайц", "Вол", "Бяроз", "Крыв", "Лапц", "Пашкев", "Радзев", "Сакал", "Танк", "Ульян",
    "Хадас", "Цыбул", "Чарнуш", "Шыбек", "Юрэв", "Ярош", "Абрам", "Бабр", "Вайцех", "Галубоў", "Дудар", "Ермал",
    "Жаўнер", "Зубар", "Ігнат", "Казлоў", "Ляўк", "Міхалк", "Някрас", "Арлоў", "Пракоп", "Раманч", "Сямаш",
    "Траян", "Угрын", "Фаміч", "Харкев", "Цімош", "Чыгір", "Шпак", "Шчарб", "Якуб", "Астап", "Барыс", "Вераб",
    "Грыб", "Дзянісан", "Еўмен", "Жыгал", "Завадск", "Ісаев", "Калін", "Ластоў", "Маслоў", "Насков", "Асіп",
    "Пятроў", "Рудак", "Сідар", "Тарасав", "Уласав", "Філіпав", "Храмц", "Цвірк", "Чэрнік", "Шумск", "Юшкев",
    "Ясюк", "Бартош", "Ваніц", "Гладк", "Доўнар", "Епіфан", "Жлоб", "Зянкев", "Іван", "Кулеш", "Лобач", "Макар",
    "Нестар", "Ожаг", "Прыгодз", "Рогач", "Скурат", "Трусав", "Уласен", "Фядос", "Хмяль", "Цярэнц", "Чорн",
    "Шавель", "Юхнав", "Ясінск", "Батур", "Вішнев", "Гайдук", "Дашкев", "Ерашэв", "Жарык", "Злоб", "Карнач",
    "Лісоўск", "Мацкев", "Нарбут", "Пінчук", "Раўбец", "Савіцк", "Тамашэв", "Урбан", "Філанов", "Хурс",
)
SURNAME_ENDINGS = ("аў", "ёў", "овіч", "евіч", "енка", "ёнак", "скі", "ук", "чык", "ец", "ель", "ін", "ка", "ан")
CITIES = ("Vilnius", "Warsaw", "Białystok", "Riga", "Tbilisi", "Kyiv", "Berlin", "Prague")
COUNTRIES = ("LT", "PL", "LV", "GE", "UA", "DE", "CZ")
FACILITIES = ("Penal colony No. 1", "Penal colony No. 3", "Penal colony No. 15", "Prison No. 8", "Pre-trial centre No. 1")
ARTICLES = ("342", "361-1", "130", "369", "368", "293")
NOTES = ("Prefers contact through the partner organisation.", "Do not call before noon.",
         "Relatives still in Belarus: never mention them on the phone.", None, None, None)


@lru_cache(maxsize=1)
def _names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    given, surnames = list(GIVEN_NAMES), [stem + ending for stem, ending in itertools.product(SURNAME_STEMS,
                                                                                           SURNAME_ENDINGS)]
    variants = SHARED_DATA / "name-variants.csv"
    if variants.exists():  # the benchmark runs without it too, on the names above
        with variants.open(encoding="utf-8") as file:
            for row in csv.DictReader(file):
                first, *_, last = row["belarusian"].split()
                if first not in given:
                    given.append(first)
                if last not in surnames:
                    surnames.append(last)
    random.Random(7).shuffle(surnames)  # which surname is common should not follow the alphabet of the stems
    return tuple(given), tuple(surnames)


def _zipf_weights(count: int, exponent: float) -> list[float]:
    return [1.0 / (rank ** exponent) for rank in range(1, count + 1)]


class People:
    """A reproducible stream of made-up people (the same seed gives the same people)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.given, self.surnames = _names()
        self._given_cum = list(itertools.accumulate(_zipf_weights(len(self.given), 0.5)))
        self._surname_cum = list(itertools.accumulate(_zipf_weights(len(self.surnames), 0.5)))

    def full_name(self) -> str:
        pick = self.random.choices
        return f"{pick(self.given, cum_weights=self._given_cum)[0]} {pick(self.surnames, cum_weights=self._surname_cum)[0]}"

    def case(self) -> dict[str, Any]:
        """The body of `POST /api/intake/cases` for one new person."""
        r = self.random
        born = date(1950, 1, 1) + timedelta(days=r.randrange(365 * 55))
        return {
            "full_name": self.full_name(),
            "date_of_birth": born.isoformat(),
            "contact": {"phone": f"+370-6{r.randrange(10**7):07d}"},
            "country": r.choice(COUNTRIES),
            "city": r.choice(CITIES),
            "languages": ["be", "ru"],
            "release_date": (date(2021, 1, 1) + timedelta(days=r.randrange(1500))).isoformat(),
            "facility": r.choice(FACILITIES),
            "articles": [r.choice(ARTICLES)],
            "safety_notes": r.choice(NOTES),
        }

    def cases(self) -> Iterator[dict[str, Any]]:
        while True:
            yield self.case()
