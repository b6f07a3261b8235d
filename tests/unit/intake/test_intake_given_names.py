"""The table of given names (services/intake/given_names.tsv): how it is read, what it refuses, and the short and
familiar forms it joins (SPEC §4: Nasta / Anastasia / Nastassia, Marfa / Maria, Zmitser / Dzmitry / Dmitry, Ales /
Aliaksandr, …)."""

from __future__ import annotations

from datetime import date

import pytest

from services.intake import names
from services.intake.names import GivenNamesError, name_and_birth_keys, name_keys, parse_given_names


def test_a_row_is_a_group_and_its_forms_in_any_script():
    table = parse_given_names("# a comment\n\nanastasia\tАнастасія, Настя, Nasta\nivan\tІван, Ваня\n")
    assert table[names._skeleton("nasta", lacinka=False)] == ("anastasia",)
    assert set(table.values()) == {("anastasia",), ("ivan",)}


def test_a_form_of_two_groups_names_both():
    table = parse_given_names("aleksandr\tАляксандр, Саша\naleksandra\tАляксандра, Саша\n")
    assert table[names._skeleton("saša", lacinka=False)] == ("aleksandr", "aleksandra")


@pytest.mark.parametrize(("text", "says"), [
    ("anastasia Анастасія, Настя\n", "expected"),  # no tab
    ("anastasia\t\n", "expected"),  # no forms
    ("Anastasia\tАнастасія\n", "not lower-case"),
    ("ivan\tІван\nivan\tВаня\n", "twice"),
    ("ivan\tІван Іванавіч\n", "not one word"),
])
def test_a_malformed_table_is_refused_with_its_line(text, says):
    with pytest.raises(GivenNamesError, match=says):
        parse_given_names(text)


def test_the_repository_table_loads_and_names_its_sources():
    header = names.GIVEN_NAMES_FILE.read_text(encoding="utf-8").split("\n# group")[0]
    assert "Wikipedia" in header and "shared/data" in header
    assert len({g for groups in names.load_given_names().values() for g in groups}) >= 50


@pytest.mark.parametrize("forms", [
    ["Nasta", "Nastassia", "Anastasia", "Анастасія", "Анастасия", "Настя", "Насця", "Настасся"],
    ["Marfa", "Maria", "Марыя", "Мария", "Маша", "Maryia"],
    ["Zmitser", "Dzmitry", "Dmitry", "Зміцер", "Дзмітрый", "Дмитрий", "Дима"],
    ["Ales", "Aliaksandr", "Aleksandr", "Алесь", "Аляксандр", "Александр", "Саша"],
    ["Yanka", "Ivan", "Янка", "Іван", "Иван", "Ваня", "Janka"],
    ["Alesia", "Aliaksandra", "Алеся", "Аляксандра", "Саша"],
])
def test_short_and_familiar_forms_meet_their_full_forms(forms):
    keys = [name_keys(f"{form} Лойка") for form in forms]
    shared = set.intersection(*keys)
    assert shared, {form: k for form, k in zip(forms, keys)}


def test_a_short_form_meets_with_the_birth_date_only_on_the_same_day():
    born = date(1990, 4, 2)
    assert name_and_birth_keys(["Насця Лойка"], born) & name_and_birth_keys(["Анастасия Лойко"], born)
    assert not name_and_birth_keys(["Насця Лойка"], born) & name_and_birth_keys(["Анастасия Лойко"], date(1990, 4, 3))


@pytest.mark.parametrize(("a", "b"), [
    ("Аляксандр Жук", "Аляксей Жук"), ("Алесь Жук", "Алеся Жук"), ("Марыя Жук", "Марына Жук"),
    ("Ганна Жук", "Яна Жук"), ("Іван Жук", "Яўген Жук"),
])
def test_different_given_names_stay_apart(a, b):
    assert not name_keys(a) & name_keys(b)
