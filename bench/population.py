"""Made-up people to register: Belarusian names with a realistic spread, so that searches by name meet the kind
of crowd they would meet in a real registry (many people sharing common given names and surnames).

Given names and surnames are weighted Zipf-like (exponent 0.5): the most common given name is worn by about 7% of
people, the most common surname by about 1%, roughly as in Belarus. Surnames are built from stems and the usual
Belarusian endings; the names in the team's `shared/data/name-variants.csv` are among them when that folder is
found (REHAB_SHARED_DATA, or `../shared/data` beside the checkout, as the tests look for it). No name here
describes a real person.

`written_otherwise` gives the same person's name as someone else would write it: the given name in another form of
its group in `services/intake/given_names.tsv` (Настасся → Nasta or Настя, Аляксандр → Саша), the surname in Latin
letters with a Latin form. Searches with those meet what a case's own name became in the index (`names.py`).
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
from services.intake import names

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


# ---- the same name, written otherwise -----------------------------------------------------------------------------

# Belarusian letters in Latin much as a passport spells them (Marozau, Katsiaryna Kuzniatsova); an iotated vowel is
# written with `y` at the start of a word and after a vowel (Yana, Maryia), with `i` elsewhere (Siarhiei, where a
# passport has Siarhei: names.py reads both alike).
_PASSPORT = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "ж": "zh", "з": "z", "і": "i", "и": "i", "й": "i",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ў": "u",
    "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "ы": "y", "ь": "", "ъ": "", "'": "", "’": "", "э": "e",
}
_IOTATED = {"е": "e", "ё": "o", "ю": "u", "я": "a"}
_VOWELS = set("аеёіоуыэюяў")


def passport_latin(word: str) -> str:
    """A Belarusian word in Latin letters, much as a passport spells it (Лойка → Loika, Настасся → Nastassia)."""
    out = []
    for index, letter in enumerate(word):
        low = letter.lower()
        if low in _IOTATED:
            before = word[index - 1].lower() if index else ""
            spelled = ("y" if not before or before in _VOWELS else "i") + _IOTATED[low]
        else:
            spelled = _PASSPORT.get(low, low)
        out.append(spelled.capitalize() if letter.isupper() else spelled)
    return "".join(out)


@lru_cache(maxsize=1)
def group_forms() -> dict[str, tuple[str, ...]]:
    """Each name group of `given_names.tsv` (by its key, `=id`) with its forms as written there, Cyrillic and Latin."""
    forms: dict[str, tuple[str, ...]] = {}
    for line in names.GIVEN_NAMES_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        group, _, written = line.partition("\t")
        forms[names.group_key(group.strip())] = tuple(f.strip() for f in written.split(",") if f.strip())
    return forms


def stands_for_several(form: str) -> bool:
    """Whether a given-name form belongs to several groups (Саша, Слава, Жэня): a search looks each of them up."""
    alternatives = names.word_alternatives(form)
    return bool(alternatives) and len(alternatives[0]) > 1


def written_otherwise(name: str, chance: random.Random, *, several: bool = False) -> str | None:
    """`name` ("Given Surname", as `People` makes them) as another person might write it: the given name in another
    form of its group, chosen at random (a short, familiar, Russian or Latin form), or with `several` among those of
    its forms that stand for several groups (None when it has none); when that form is Latin, or the given name is
    in no group, the surname in Latin too (kept in Cyrillic where that spelling would not meet it: `ў` before a
    vowel, which only made-up surnames have)."""
    given, surname = name.split(" ", 1)
    groups = names.word_alternatives(given)[0]
    others = [form for form in group_forms().get(groups[0], ()) if form != given
              and (not several or stands_for_several(form))]
    if several and not others:
        return None
    given = chance.choice(others) if others else passport_latin(given)
    latin = passport_latin(surname)
    if given.isascii() and names.word_alternatives(latin) == names.word_alternatives(surname):
        surname = latin
    return f"{given} {surname}"
