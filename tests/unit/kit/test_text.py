"""kit.text: a field that is to say something must hold a character a reader sees; what it holds is kept as typed."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ValidationError

from kit.text import OneLine, Said, printable, shown_text


class Note(BaseModel):
    text: Annotated[str, Said]


@pytest.mark.parametrize("typed", ["", "   ", "\u200b\u200b", "\u2060\u00ad\u200d", "\t\n\u3000", "\u0301\u0301"])
def test_nothing_a_reader_would_see_is_refused_naming_the_field(typed):
    with pytest.raises(ValidationError) as refused:
        Note(text=typed)
    assert "nothing a reader would see" in str(refused.value) and "text" in str(refused.value)


@pytest.mark.parametrize("typed", ["Ок", " x ", "Мікола\u200b Статкевіч", "e\u0301"])
def test_anything_a_reader_sees_is_kept_as_typed(typed):
    assert Note(text=typed).text == typed


def test_what_a_reader_sees_is_one_space_for_every_run_and_no_invisible_character():
    assert shown_text("a\u200b  b\u00a0\u00a0c\u2060") == "a b c"
    assert shown_text("\u3164\u2800\uffa0\u115f\u1160") == ""  # letters drawn as nothing: blank too
    with pytest.raises(ValidationError):
        Named(name="\u3164\u3164")


def test_direction_controls_are_taken_out_so_the_text_shows_as_it_reads():
    """A partner's message showed "+48 555-8100" for a number stored as "0018-555 84+", and a file name read
    "exe.gpj" as "jpg.exe": the overrides, embeddings and isolates go; letters of any script keep their own."""
    assert Note(text="Please call \u202e0018-555 84+\u202c today").text == "Please call 0018-555 84+ today"
    assert Note(text="Safe: \u202e\u2066gpj.exe\u2069").text == "Safe: gpj.exe"
    assert Note(text="שלום Алесь").text == "שלום Алесь"
    with pytest.raises(ValidationError):
        Note(text="\u202e\u202c")


def test_controls_but_tab_and_line_breaks_are_taken_out():
    """An outside review's find: ESC and BEL in a partner's message reached the caseworker's page raw (and a
    terminal showing the API's answer would act on them: recolour, clear, rewrite)."""
    assert Note(text="esc \x1b[31mRED\x1b[0m bell\x07").text == "esc [31mRED[0m bell"
    assert Note(text="a\u0085b\x7fc\x9bd").text == "abcd"  # DEL and the C1 controls too
    assert Note(text="line one\r\nline two\tend").text == "line one\r\nline two\tend"
    with pytest.raises(ValidationError):
        Note(text="\x1b\x07")


class Named(BaseModel):
    name: Annotated[str, Said, OneLine]


def test_a_name_is_one_line_and_a_terminal_is_shown_what_is_stored():
    """An outside review's find: a client named "x\\r\\npc_…\\tactive" printed a made-up active client in
    `rehab clients list`. A name takes no line break or tab; what was stored before is printed escaped."""
    assert Named(name="Legal aid — Kaunas").name == "Legal aid — Kaunas"
    for broken in ("x\r\npc_00\tactive", "a\u2028b", "a\nb"):
        with pytest.raises(ValidationError) as refused:
            Named(name=broken)
        assert refused.value.errors()[0]["type"] == "one_line"
    assert printable("pc_1\tactive\u202e\nЖ ok") == "pc_1\\tactive\\u202e\\nЖ ok"
