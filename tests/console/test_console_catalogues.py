"""The console's gettext catalogues are whole: every msgid the pages name (found by Babel's extractor, as a
translator's `pybabel extract` finds them) is in every language's catalogue with a text, plural forms as many as the
language has, and the English placeholders; Polish and Lithuanian hold everything the partner console and sign-in
say. The check is shown to fail on a catalogue with a word taken out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from gateway.console import i18n

CONSOLE = Path(i18n.__file__).parent
# The pages partner staff see, in five languages, and the words of the frame around every page they see (the
# frame's staff menus and the admins' sealed-keys banner are not shown to them); every other page in be/ru/en.
PARTNER_FILES = re.compile(r"^(partner\.py|templates/(partner_[a-z_]+|sign_in|mfa_[a-z]+|error)\.html)$")
PARTNER_FRAME = {"app", "skip", "sign_out", "problem", "language_choice", "n_days", "unread_count"}
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


def catalogue(language: str) -> Catalog:
    with i18n.catalogue_path(language).open("rb") as po:
        return read_po(po, locale=language, domain=i18n.DOMAIN)


def named_by_the_pages() -> dict[str, set[str]]:
    """Each msgid that `t("…")` or `tn("…", n)` names in the console's code and templates, with the files naming it.
    A literal ending in "_" or "." begins a family of msgids chosen at run time (`t("category_" ~ need.category)`)."""
    with (CONSOLE / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    named: dict[str, set[str]] = {}
    for filename, _line, msgid, _comments, _context in extract_from_dir(
            str(CONSOLE), method_map, options_map, keywords={"t": None, "tn": None}, comment_tags=()):
        named.setdefault(msgid, set()).add(filename)
    return named


def forms(message) -> list[str]:  # noqa: ANN001
    return list(message.string) if message.pluralizable else [message.string]


def faults(catalogues: dict[str, Catalog], named: dict[str, set[str]]) -> list[str]:
    """What is wrong with the catalogues, in sentences (empty when they are whole)."""
    found: list[str] = []
    english = catalogues["en"]
    ids = {message.id if isinstance(message.id, str) else message.id[0] for message in english if message.id}
    for msgid, files in sorted(named.items()):
        if msgid.endswith(("_", ".")):
            if not any(known.startswith(msgid) for known in ids):
                found.append(f"no msgid begins with {msgid!r} ({', '.join(sorted(files))})")
        elif msgid not in ids:
            found.append(f"{msgid!r} is named by {', '.join(sorted(files))} but not in the English catalogue")
    partner_ids = {msgid for msgid, files in named.items() if any(PARTNER_FILES.match(f) for f in files)}
    partner_ids |= {msgid for msgid in ids if msgid.startswith("partner_")} | PARTNER_FRAME
    for language, translated in catalogues.items():
        wanted = ids if language in i18n.STAFF_LANGUAGES else {m for m in partner_ids if not m.endswith(("_", "."))}
        plurals = translated.num_plurals
        for msgid in sorted(wanted):
            message, source = translated.get(msgid), english.get(msgid)
            if message is None:
                found.append(f"{language}: {msgid!r} is missing")
                continue
            texts = forms(message)
            if message.pluralizable and len(texts) != plurals:
                found.append(f"{language}: {msgid!r} has {len(texts)} plural forms, the language has {plurals}")
            if not all(text and text.strip() for text in texts):
                found.append(f"{language}: {msgid!r} is empty")
            expected = set(PLACEHOLDER.findall(" ".join(forms(source))))
            for text in texts:
                if set(PLACEHOLDER.findall(text or "")) != expected:
                    found.append(f"{language}: {msgid!r} has placeholders {sorted(PLACEHOLDER.findall(text or ''))}, "
                                 f"English has {sorted(expected)}")
    return found


def test_every_word_the_pages_name_is_in_every_language_with_its_placeholders_and_plural_forms():
    named = named_by_the_pages()
    assert len(named) > 500  # the extractor read the templates and the code, not nothing
    catalogues = {language: catalogue(language) for language in i18n.LANGUAGES}
    assert faults(catalogues, named) == []


def test_the_check_fails_on_a_word_taken_out_an_empty_plural_form_or_a_lost_placeholder():
    named = named_by_the_pages()
    catalogues = {language: catalogue(language) for language in i18n.LANGUAGES}
    catalogues["be"].delete("sign_in")
    catalogues["lt"].delete("partner_send")
    catalogues["ru"]["unread_count"].string = ("{n} новое сообщение", "", "{n} новых сообщений")
    text = catalogues["ru"].get("admin_checked").string
    catalogues["ru"].get("admin_checked").string = text.replace("{n}", "")
    found = faults(catalogues, {**named, "a_word_nobody_wrote": {"templates/home.html"}})
    assert "be: 'sign_in' is missing" in found and "lt: 'partner_send' is missing" in found
    assert "ru: 'unread_count' is empty" in found
    assert any(line.startswith("ru: 'admin_checked' has placeholders []") for line in found)
    assert any(line.startswith("'a_word_nobody_wrote' is named by templates/home.html") for line in found)


@pytest.mark.parametrize(("language", "counts"), [
    ("en", {1: "1 new message", 2: "2 new messages", 21: "21 new messages"}),
    ("ru", {1: "1 новое сообщение", 3: "3 новых сообщения", 5: "5 новых сообщений", 11: "11 новых сообщений",
            21: "21 новое сообщение", 1234: "1\u00a0234 новых сообщения"}),
    ("be", {1: "1 новае паведамленне", 2: "2 новыя паведамленні", 12: "12 новых паведамленняў",
            22: "22 новыя паведамленні"}),
    ("pl", {1: "1 nowa wiadomość", 2: "2 nowe wiadomości", 5: "5 nowych wiadomości", 22: "22 nowe wiadomości",
            12: "12 nowych wiadomości"}),
    ("lt", {1: "1 nauja žinutė", 21: "21 nauja žinutė", 2: "2 naujos žinutės", 10: "10 naujų žinučių",
            15: "15 naujų žinučių"}),
])
def test_a_count_takes_its_language_s_plural_form(language, counts):
    tn = i18n.counter(language)
    assert {n: tn("unread_count", n) for n in counts} == counts


def test_a_staff_page_word_missing_in_polish_falls_back_to_english_and_an_unknown_msgid_shows_itself(monkeypatch):
    monkeypatch.delenv(i18n.STRICT_ENV)  # as in production
    assert i18n.translator("pl")("grants") == i18n.MESSAGES["en"]["grants"] == "Grants"
    assert i18n.translator("be")("no_such_word") == "no_such_word"


def test_under_tests_a_page_naming_a_word_no_catalogue_holds_fails(monkeypatch):
    # Set for the whole suite (tests/conftest.py): every page a test renders is checked, the words named through an
    # f-string too, which Babel's extraction above cannot see.
    monkeypatch.setenv(i18n.STRICT_ENV, "1")
    assert i18n.translator("pl")("grants") == "Grants"  # a staff page shown to someone who chose Polish
    with pytest.raises(i18n.MissingWord):
        i18n.translator("be")("no_such_word")
    with pytest.raises(i18n.MissingWord):
        i18n.translator("en")(f"status_custody_{'no-such-custody'}")
    with pytest.raises(i18n.MissingWord):
        i18n.counter("ru")("no_such_count", 3)
    assert i18n.counter("ru")("unread_count", 3)
