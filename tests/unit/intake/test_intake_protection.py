"""Sealing, data keys and blind-index terms, with real keys from a real secrets folder."""

from __future__ import annotations

from datetime import date

import pytest

from kit.crypto import BlindIndex, DecryptionError, Keyring, WrappedKey, add_key_to_file
from kit.secrets import BLIND_INDEX_KEY_FILE, KEK_FILE, read_key_file
from services.intake.protection import (
    MANY_WORDS,
    MAX_PAIRED_WORDS,
    NAME_DOB_TERM,
    NAME_TERM,
    PAIR_TERM,
    TOKEN_TERM,
    CaseVault,
)


@pytest.fixture
def vault(secrets_dir) -> CaseVault:
    return CaseVault(Keyring.from_file(secrets_dir / "intake" / KEK_FILE), BlindIndex(read_key_file(secrets_dir / "intake" / BLIND_INDEX_KEY_FILE)))


def test_a_sealed_field_opens_only_for_its_own_table_column_and_row(vault):
    key, _ = vault.new_case_key()
    blob = vault.seal(key, "cases", "full_name_sealed", "case-1", "Марыя Жук")
    assert vault.open(key, "cases", "full_name_sealed", "case-1", blob) == "Марыя Жук"
    assert "Марыя".encode() not in blob and b"\xd0\x9c" not in blob
    for table, column, row in (("cases", "full_name_sealed", "case-2"), ("cases", "city_sealed", "case-1"),
                               ("needs", "full_name_sealed", "case-1")):
        with pytest.raises(DecryptionError):
            vault.open(key, table, column, row, blob)
    other_key, _ = vault.new_case_key()
    with pytest.raises(DecryptionError):
        vault.open(other_key, "cases", "full_name_sealed", "case-1", blob)


def test_lengths_are_padded_so_a_short_name_and_a_longer_one_look_alike(vault):
    key, _ = vault.new_case_key()
    short = vault.seal(key, "cases", "full_name_sealed", "c", "Ян Жук")
    longer = vault.seal(key, "cases", "full_name_sealed", "c", "Аляксандр Жук")
    assert len(short) == len(longer)
    assert vault.open(key, "cases", "full_name_sealed", "c", vault.seal(key, "cases", "full_name_sealed", "c", None)) is None


def test_a_wrapped_data_key_unwraps_after_the_keyring_file_gains_a_key_while_running(vault, secrets_dir):
    key, wrapped = vault.new_case_key()
    assert vault.keyring.unwrap(wrapped) == key
    # Another process (rehab keys rotate) adds a KEK and re-wraps: this process, started before, still opens both.
    other_process = Keyring.from_file(secrets_dir / "intake" / KEK_FILE)
    new_kid = add_key_to_file(secrets_dir / "intake" / KEK_FILE)
    rewrapped = other_process.rewrap(wrapped)
    assert rewrapped.kid == new_kid != wrapped.kid
    assert vault.keyring.unwrap(rewrapped) == key
    assert vault.keyring.unwrap(wrapped) == key
    assert vault.new_case_key()[1].kid == new_kid  # new cases are wrapped under the new KEK at once


def test_an_unknown_or_tampered_wrapped_key_is_refused(vault):
    _, wrapped = vault.new_case_key()
    with pytest.raises(DecryptionError):
        vault.keyring.unwrap(WrappedKey("k99", wrapped.blob))
    with pytest.raises(DecryptionError):
        vault.keyring.unwrap(WrappedKey(wrapped.kid, wrapped.blob[:-1] + bytes([wrapped.blob[-1] ^ 1])))


def test_name_terms_match_across_scripts_and_hold_nothing_readable(vault, secrets_dir):
    birth = date(1979, 3, 8)
    cyrillic = vault.name_terms(["Янка Мацкевіч"], birth)
    latin = vault.name_terms(["Janka Mackievič", "Ivan Mackevich"], birth)
    assert {t for t in cyrillic if t[0] == NAME_DOB_TERM} <= latin
    assert {t for t in cyrillic if t[0] == TOKEN_TERM} <= latin
    # One set of alternatives per word of a query (one term unless the word is an ambiguous short form): the case
    # holds one term of each.
    [matskevich] = vault.query_terms("matskevich")
    assert len(matskevich) == 1 and matskevich <= {term for kind, term in cyrillic if kind == TOKEN_TERM}
    assert all(len(term) == 8 and int(term, 16) >= 0 for _, term in cyrillic)  # 32-bit truncated HMACs
    # Without the blind-index key, the same name gives other terms: the terms cannot be recomputed from a guess.
    other = CaseVault(vault.keyring, BlindIndex(b"\x01" * 32))
    assert not other.name_terms(["Янка Мацкевіч"], birth) & cyrillic


def test_no_date_of_birth_means_no_duplicate_term_but_still_searchable(vault):
    terms = vault.name_terms(["Марыя Жук"], None)
    assert {kind for kind, _ in terms} == {TOKEN_TERM, PAIR_TERM, NAME_TERM}  # found as `name_only` duplicates
    assert len(terms) == 4  # two words, their pair and the whole name



def test_pair_terms_join_any_two_words_of_any_of_the_names(vault):
    terms = vault.name_terms(["Сяргей Марозаў", "Siarhei Kavaleu"], None)
    pairs = {term for kind, term in terms if kind == PAIR_TERM}
    assert len(pairs) == 3  # three distinct word keys: Сяргей = Siarhei
    # A query's pairs are among the case's, whichever names its words come from and in any script or order.
    # (Each is the set of pair terms the two words may stand for, of which the case holds one.)
    for query in ("Kavaleu Marozau", "марозау сергей"):
        assert vault.query_pair_terms(query) and all(pair & pairs for pair in vault.query_pair_terms(query))
    assert vault.query_pair_terms("Марозаў") == [] and vault.query_pair_terms("Марозаў marozau") == []
    assert all(len(term) == 8 and int(term, 16) >= 0 for term in pairs)  # keyed hashes like every term
    assert not pairs & {term for kind, term in terms if kind == TOKEN_TERM}  # a domain of their own


def test_a_case_with_too_many_name_words_gets_one_marker_instead_of_every_pair(vault):
    words = ["Марозаў", "Жук", "Рыбак", "Лапіцкі", "Кавалёва", "Сцяпан", "Ткач", "Новік", "Бондар", "Карп", "Шпак",
             "Грыб", "Рудак", "Лобач"][:MAX_PAIRED_WORDS + 1]
    terms = vault.name_terms([" ".join(words[:5]), " ".join(words[5:])], None)
    assert {term for kind, term in terms if kind == PAIR_TERM} == {MANY_WORDS}
    assert len([kind for kind, _ in terms if kind == TOKEN_TERM]) == MAX_PAIRED_WORDS + 1
