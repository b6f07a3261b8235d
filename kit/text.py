"""Text as a reader sees it: what a person typed into a field that is to say something (a note, a message, a reason)
must hold at least one character a reader would see. A message of zero-width spaces reaches a partner as an empty
bubble, and a task titled with one sits in a list as a blank line nobody can name."""

from __future__ import annotations

import unicodedata

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError


# Letters and symbols that are drawn as nothing: the Hangul fillers and the blank Braille pattern. A name of only
# these showed as nothing in the console and in `rehab clients list` (an outside review's find).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def shown_text(text: str) -> str:
    """What of a text a reader sees: every run of spaces (of any kind) as one, and no invisible character — zero-width
    spaces, word joiners, soft hyphens, controls, lone combining marks (Unicode's C and M categories, after NFC has
    put each accent on its letter)."""
    kept = []
    for char in unicodedata.normalize("NFC", text):
        kind = unicodedata.category(char)
        if kind[0] == "Z" or char in _BLANK_LETTERS:
            kept.append(" ")
        elif kind[0] not in "CM":
            kept.append(char)
    return " ".join("".join(kept).split())


# Unicode's explicit direction controls: embeddings and overrides (U+202A–U+202E) and isolates (U+2066–U+2069).
# One in a partner's message showed "+48 555-8100" for a number stored as "0018-555 84+": what a reader sees must be
# what was written. Right-to-left script needs none of them; its letters carry their own direction.
_DIRECTION_CONTROLS = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
# The C0 and C1 controls but tab and the line breaks: nobody types them, a partner's terminal or log viewer acts on
# them (ESC recolours, clears, rewrites what is shown), and in a page they are parse errors.
_CONTROLS = [*(code for code in range(0x20) if chr(code) not in "\t\n\r"), *range(0x7F, 0xA0)]
_NOT_KEPT = dict.fromkeys([*_DIRECTION_CONTROLS, *_CONTROLS])


def something_shown(text: str) -> str:
    """A field's text as typed (never rewritten: a line break or a joiner in a name may matter) but for the
    direction controls, which make it show other than it reads, and the other controls but tab and line breaks,
    once it is known to hold something a reader sees; a pydantic validator, so that the 422 names the field."""
    text = text.translate(_NOT_KEPT)
    if not shown_text(text):
        raise ValueError("holds nothing a reader would see (only spaces or invisible characters)")
    return text


Said = AfterValidator(something_shown)  # `Annotated[str, StringConstraints(...), Said]`


# Line breaks of every kind, and tab: what makes one text show as several rows or columns of a listing.
_LINE_BREAKS = "\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def one_line(text: str) -> str:
    """A name is one line: a line break or a tab in a partner's or a client's name shows as another row of a listing
    (`rehab clients list` printed a made-up "active" client from one); a pydantic validator, after `Said`."""
    if any(char in _LINE_BREAKS for char in text):
        raise PydanticCustomError("one_line", "must be one line (no line breaks or tabs)")
    return text


OneLine = AfterValidator(one_line)  # `Annotated[str, StringConstraints(...), Said, OneLine]`


def printable(text: str) -> str:
    """A stored text for a terminal: every character a terminal would act on or hide (controls, line breaks,
    direction and other format characters) written as its escape, so what is printed is what is stored."""
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)
