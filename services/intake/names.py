"""Names as keys: the same person's name, written in any script or spelling, gives the same keys.

A name is cut into tokens and each token becomes a phonetic skeleton in a small Latin alphabet:

1. script: Unicode NFKC, case-folded; Belarusian, Russian (and Ukrainian) Cyrillic transliterated letter by
   letter; Latin spellings parsed with their digraphs (passport and BGN/PCGN `kh zh sh ch ts`, Łacinka and Polish
   `č š ž ł ŭ ć cz sz`, where `ch` is х); other scripts through anyascii; diacritics, soft signs and apostrophes
   dropped.
2. spelling: the marks of softness and iotation (`ia ya ja я`, `ie ye je е`, `iu yu ju ю`, `ы/и/і/y/j/й`) are
   reduced to what every system writes alike; `ў`, `ŭ`, `w` and the passport's `u` after a vowel are one sound.
3. Belarusian against Russian: akanye (unstressed о written а) and yakanye (е written я) by folding `o e a` into
   one vowel; tsekanne and dzekanne (ць/ть, дз/д) by folding `ts→t`, `dz→d`; Belarusian `г` (h) is Russian `г` (g);
   the prothetic `в`/`у` of Вольга/Ольга, Уладзімір/Владимир; the inserted `в` of Навуменка/Науменко.
4. given names: a word that is a form of a given name in `given_names.tsv` (full, short and familiar forms in
   Belarusian and Russian: Мікалай/Николай/Коля, Насця/Анастасия/Nasta, Зміцер/Дзмітрый/Дима) becomes the key of
   its name group (`=<group id>`), so a short form meets its full form; a form of two groups (Саша) stands for
   both (`word_alternatives`). Surnames keep the rules above (Лойка/Лойко).
5. double-barrelled names: a name written with words joined by a hyphen (Сідарэнка-Баранава, Лукашэвіч-Новік) is
   also the person written with one of those words (Вольга Сідарэнка, Ольга Баранова): its whole-name keys include
   each such reading, as long as two words or more are left (`name_keys`), so a given name alone never meets anyone.

Vowels other than `o e a` stay apart (`i`, `u`), and so do consonants, so that Марыя and Марына, Рыбак and Рыбакоў,
Марозаў and Мазураў keep different keys. Everything here is a pure function: no I/O, no keys, no secrets.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from itertools import islice, product
from pathlib import Path

from anyascii import anyascii

# Cyrillic letters as an intermediate Latin that the Latin parser below reads like any other spelling. `х` is
# written `kh` (not `x`, which Latin spellings use for `ks`); `ч ш ж` are written with their háček at once.
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "ie", "ё": "io", "є": "ie", "ж": "ž",
    "з": "z", "і": "i", "и": "i", "ї": "ii", "ы": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ў": "w", "ф": "f", "х": "kh", "ц": "c", "ч": "č", "ш": "š",
    "щ": "šč", "ъ": "", "ь": "", "э": "e", "ю": "iu", "я": "ia",
}
# Latin letters with a meaning of their own in Belarusian Łacinka and Polish spellings; other accents are dropped.
_LATIN_KEPT = {"č": "č", "š": "š", "ž": "ž", "ŭ": "w", "ł": "l", "ć": "c", "ś": "s", "ź": "z", "ń": "n", "ż": "ž"}
# Marks that only say "soft" or "separate" and no spelling system agrees on: removed before anything else,
# because NFKC would turn some of them (´) into a space and a combining accent.
_APOSTROPHES = dict.fromkeys(map(ord, "'’‘ʼʹʻ`´′ˈ"), None)
# Łacinka and Polish write х as `ch` (and ч as `č`/`cz`); passport, BGN/PCGN and English spellings write ч as `ch`.
_LACINKA_OR_POLISH = re.compile(r"[łŭćśźńčšžż]|cz|sz")

# What joins the parts of a double-barrelled name: the hyphen, and the dashes typed (or autocorrected) for it.
_HYPHENS = frozenset("-\u2010\u2011\u2012\u2013\u2014")

_VOWELS = "aeiou"
_CONSONANT = r"[bcčdfgklmnprsštvwxzž]"


def word_alternatives(name: str) -> list[tuple[str, ...]]:
    """Each word of a name, in the order written (empty words dropped), as the keys it may stand for: one key for
    most words, a name group's key per group for a given-name form of several groups (Саша: Аляксандр and
    Аляксандра)."""
    return [word for run in _hyphenated_runs(name) for word in run]


def _hyphenated_runs(name: str) -> list[list[tuple[str, ...]]]:
    """The words of a name (as `word_alternatives` gives them) grouped as they were written: the words joined by
    hyphens (Сідарэнка-Баранава, Анна-Марыя) are one run; most runs are one word."""
    text = unicodedata.normalize("NFKC", name.translate(_APOSTROPHES)).casefold()
    lacinka = bool(_LACINKA_OR_POLISH.search(text))
    latin = _to_latin_letters(text, hyphens=True)
    if "-" not in latin:  # most names: every word a run of its own
        return [[keys] for keys in (word_keys(word, lacinka=lacinka) for word in _WORDS.split(latin) if word) if keys]
    runs = []
    for run in _RUNS.split(latin):
        words = [keys for keys in (word_keys(word, lacinka=lacinka) for word in run.split("-") if word) if keys]
        if words:
            runs.append(words)
    return runs


_WORDS = re.compile(r"[^\w]+|[\d_]+")
_RUNS = re.compile(r"[^\w-]+|[\d_]+")  # words joined by hyphens stay together


def tokens(name: str) -> list[str]:
    """Every key of every word of a name (a word of several name groups gives each), in the order written: what a
    case's index holds."""
    return [key for keys in word_alternatives(name) for key in keys]


def name_key(name: str) -> str:
    """One key for a whole name: its word keys sorted, so that word order does not matter (of a word of several
    name groups, the first)."""
    return " ".join(sorted(keys[0] for keys in word_alternatives(name)))


# At most this many whole-name keys per name: a name of several ambiguous short forms (Саша Валя Жук) gives the
# product of their groups; beyond this the rest are not indexed (such names are very rare).
MAX_NAME_KEYS = 16


def name_keys(name: str) -> set[str]:
    """The name's keys (one per reading of its ambiguous short forms), and when it has three or more words, also
    its keys without a patronymic-looking word; and for a double-barrelled name, the keys of the name written with
    one word of each hyphenated run (`_one_word_of_each_run`), where two words or more are left.

    "Сяргей Уладзіміравіч Марозаў" then also meets "Siarhei Marozau". Both sides are tried word by word, so a
    surname that looks like a patronymic (Багдановіч) is never lost: the full key is always among the keys.
    "Вольга Мікалаеўна Сідарэнка-Баранава" also meets "Вольга Сідарэнка" and "Ольга Николаевна Баранова", and
    "Зміцер Лукашэвіч-Новік" meets "Зміцер Лукашэвіч": a given name and one part of a double-barrelled surname, never
    the given name alone. A name of no hyphenated run has exactly the keys it had before.
    """
    runs = _hyphenated_runs(name)
    keys = _whole_name_keys([word for run in runs for word in run])
    for written in _one_word_of_each_run(runs):
        if len(written) >= 2:
            keys |= _whole_name_keys(written)
    return keys


def _whole_name_keys(alternatives: list[tuple[str, ...]]) -> set[str]:
    keys: set[str] = set()
    for words in _readings(alternatives):
        keys.add(" ".join(sorted(words)))
        if len(words) >= 3:
            for i, word in enumerate(words):
                if _looks_patronymic(word):
                    keys.add(" ".join(sorted(words[:i] + words[i + 1:])))
    return keys


def _one_word_of_each_run(runs: list[list[tuple[str, ...]]]) -> list[list[tuple[str, ...]]]:
    """The name as it may be written shorter: each hyphenated run as one of its words (at most `MAX_NAME_KEYS`
    ways); nothing for a name of no hyphenated run."""
    if all(len(run) == 1 for run in runs):
        return []
    return [list(words) for words in islice(product(*runs), MAX_NAME_KEYS)]


def _readings(alternatives: list[tuple[str, ...]]) -> list[list[str]]:
    if not alternatives:
        return []
    readings = []
    for reading in product(*alternatives):
        readings.append(list(reading))
        if len(readings) >= MAX_NAME_KEYS:
            break
    return readings


def name_and_birth_keys(names: Iterable[str], date_of_birth: date) -> set[str]:
    """What identifies a person for duplicate detection: each name's key together with the date of birth."""
    return {f"{key}|{date_of_birth.isoformat()}" for name in names for key in name_keys(name)}


def _to_latin_letters(text: str, *, hyphens: bool = False) -> str:
    """Lower-case Latin letters, digits and spaces (anything else is a space); with `hyphens`, a hyphen or a dash
    typed for one (`_HYPHENS`) stays as `-`."""
    out = []
    for ch in text:
        if ch in _CYRILLIC:
            out.append(_CYRILLIC[ch])
        elif ch in _LATIN_KEPT or ("a" <= ch <= "z"):
            out.append(ch)
        elif unicodedata.category(ch).startswith("M"):
            continue  # a combining accent left over (stress marks on Cyrillic, for instance)
        elif ch.isalpha():
            bare = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
            out.append(bare if bare.isascii() else anyascii(bare).lower())
        elif hyphens and ch in _HYPHENS:
            out.append("-")
        else:
            out.append(" " if not ch.isdigit() else ch)
    return "".join(out)


@lru_cache(maxsize=50_000)  # bounded: searches bring words from outside
def word_keys(word: str, *, lacinka: bool = False) -> tuple[str, ...]:
    """The keys of one word already in lower-case Latin letters: its name groups' keys when it is a form of a given
    name (`given_names.tsv`), else its phonetic skeleton (see the module's docstring). Empty for no letters."""
    skeleton = _skeleton(word, lacinka=lacinka)
    if not skeleton:
        return ()
    groups = GIVEN_NAMES.get(skeleton)
    return tuple(group_key(group) for group in groups) if groups else (skeleton,)


def forget_words() -> None:
    """Drop the remembered words (`word_keys`' cache): after an erasure no reachable copy of the person's name words
    stays in this process (SPEC §7.6 names caches). Every word is remembered again at its next use."""
    word_keys.cache_clear()


def token_key(word: str, *, lacinka: bool = False) -> str:
    """The first key of one word (`word_keys`)."""
    keys = word_keys(word, lacinka=lacinka)
    return keys[0] if keys else ""


def group_key(group: str) -> str:
    """A name group's key: `=` never ends a skeleton, so a group's key never equals a word's."""
    return f"={group}"


def _skeleton(word: str, *, lacinka: bool) -> str:
    s = _parse_latin(word, lacinka=lacinka)
    s = re.sub(r"i+", "i", s)
    # Iotation and softness: `я` is `ia`/`ya`/`ja`, `е` is `ie`/`ye`/`e`: keep only the vowel, except a word's own
    # initial glide before a and u (Яна is not Анна, Юля is not Уля).
    s = re.sub(r"^i(?=[eo])", "", s)
    s = re.sub(r"(?<=.)i(?=[aeou])", "", s)
    # The prothetic consonant of Belarusian: Вольга/Ольга, Восіп/Осип; Уладзімір/Владимир.
    s = re.sub(r"^v(?=[ou])", "", s)
    s = re.sub(rf"^u(?={_CONSONANT})", "w", s)
    # Non-syllabic u: ў, ŭ, w and the passport's `u` after a vowel (Marozau, Vasileuskaya) are one sound, which
    # Russian writes в; Belarusian also inserts it between vowels (Навуменка/Науменко).
    s = re.sub(rf"(?<=[aeo])vu(?={_CONSONANT})", "w", s)
    s = re.sub(rf"(?<=[aeo])u(?={_CONSONANT}|$)", "w", s)
    # Passport and BGN spellings write г as h, so кг, зг, сг come out as kh, zh, sh: read like х, ж, ш.
    s = s.replace("kg", "x").replace("zg", "ž").replace("sg", "š")
    # Belarusian against Russian: akanye/yakanye (o e a), dzekanne/tsekanne (dz→d, c→t), ў/в (h is g since parsing).
    s = s.replace("dz", "d").translate(_FOLD)
    return re.sub(r"(.)\1+", r"\1", s)


_FOLD = str.maketrans({"o": "a", "e": "a", "c": "t", "w": "v"})


def _parse_latin(word: str, *, lacinka: bool) -> str:
    """Digraphs of every common system into single letters: `x` is ks; `ch` is х in Łacinka/Polish, else ч."""
    s = word.replace("x", "ks")
    for digraph, letter in (("shch", "šč"), ("szcz", "šč"), ("cz", "č"), ("sz", "š"), ("zh", "ž"), ("kh", "x"),
                            ("sh", "š"), ("ch", "x" if lacinka else "č"), ("ts", "c"), ("ph", "f")):
        s = s.replace(digraph, letter)
    if lacinka:
        s = s.replace("rz", "ž")
    return s.translate(_SINGLE_LETTERS)


_SINGLE_LETTERS = str.maketrans({"y": "i", "j": "i", "h": "g", "q": "k", **{k: v for k, v in _LATIN_KEPT.items() if len(v) == 1}})


def _looks_patronymic(key: str) -> bool:
    # -овіч/-евич/-авіч (and -ич), -аўна/-овна/-ічна/-ична, as keys: …vič, …vna, …čna
    return key.endswith(("vič", "vna", "čna")) and len(key) > 5


# ---- the table of given names ----------------------------------------------------------------------------------

GIVEN_NAMES_FILE = Path(__file__).with_name("given_names.tsv")
_GROUP_ID = re.compile(r"[a-z][a-z0-9-]{0,40}")


class GivenNamesError(ValueError):
    """The table of given names is malformed: the line and what is wrong, never a silent half-table."""


def parse_given_names(text: str) -> dict[str, tuple[str, ...]]:
    """`given_names.tsv` as {skeleton of a form: its group ids, sorted}. One row per group: `id<TAB>form, form, …`;
    blank lines and lines starting with `#` are skipped. Refused (`GivenNamesError`): a row without a tab or forms,
    a bad or repeated group id, a form of more than one word."""
    table: dict[str, set[str]] = {}
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        group, tab, forms = line.partition("\t")
        group = group.strip()
        if not tab or not forms.strip():
            raise GivenNamesError(f"line {number}: expected `group<TAB>form, form, …`")
        if not _GROUP_ID.fullmatch(group):
            raise GivenNamesError(f"line {number}: group id {group!r} is not lower-case ASCII")
        if group in seen:
            raise GivenNamesError(f"line {number}: group {group!r} appears twice")
        seen.add(group)
        for form in (f.strip() for f in forms.split(",")):
            if not form:
                continue
            text_form = unicodedata.normalize("NFKC", form.translate(_APOSTROPHES)).casefold()
            words = [w for w in re.split(r"[^\w]+|[\d_]+", _to_latin_letters(text_form)) if w]
            if len(words) != 1:
                raise GivenNamesError(f"line {number}: form {form!r} is not one word")
            skeleton = _skeleton(words[0], lacinka=bool(_LACINKA_OR_POLISH.search(text_form)))
            if skeleton:
                table.setdefault(skeleton, set()).add(group)
    return {skeleton: tuple(sorted(groups)) for skeleton, groups in table.items()}


def load_given_names(path: Path = GIVEN_NAMES_FILE) -> dict[str, tuple[str, ...]]:
    return parse_given_names(path.read_text(encoding="utf-8"))


GIVEN_NAMES = load_given_names()
