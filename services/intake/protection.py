"""How a case's personal data is kept: sealed under the case's own data key, found through blind-index terms.

- Every case has a 256-bit data key, stored only wrapped by a key-encryption key (KEK) that lives in the secrets
  file, never in the database; the KEK's id is stored beside the wrapped key, so `rehab keys rotate` can re-wrap
  the data keys under a new KEK while the service runs (the kit's keyring re-reads the file when it changes).
- Each personal field is sealed with AES-256-GCM under that data key; the associated data names the table, the
  column and the row, so a ciphertext copied to another row or field does not open. Plaintexts are padded to a
  multiple of 32 bytes, so a ciphertext's length says little about the name or note inside.
- Destroying the wrapped data key (erasure) makes every ciphertext of the case unrecoverable, even with the KEK.
  What is sealed under another key goes by deletion: the kit's stored Idempotency-Key answers, found by case id.
- Names are found through keyed HMACs of their phonetic keys (`names.py`), never through the plaintext.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from itertools import combinations, islice
from typing import Any

from sqlmodel import Session

from kit.crypto import BlindIndex, DecryptionError, Keyring, WrappedKey, aad, open_sealed, seal
from kit.db import scrub_after_commit
from kit.errors import Sealed
from kit.idempotency import Idempotency
from services.intake import names as name_keys
from services.intake.models import CaseKey

PAD_TO = 32
TOKEN_TERM = "token"  # one term per word of any of the case's names: `POST /cases/search`
PAIR_TERM = "pair"  # one term per two words of the case's names (any two, across all of them): searches of 2+ words
NAME_DOB_TERM = "name_dob"  # one term per whole name (and patronymic-less variant) with the date of birth: duplicates
NAME_TERM = "name"  # the same whole names without the date of birth: `name_only` duplicates
_TERM_DOMAINS = {TOKEN_TERM: "intake.name-token.v1", PAIR_TERM: "intake.name-pair.v1",
                 NAME_DOB_TERM: "intake.name-dob.v1", NAME_TERM: "intake.name.v1"}
# Parts of the index that cases opened before this version lack or hold in an older form: `rehab names reindex`
# writes them (the migration that introduced each marks it pending in `name_index_pending`).
GIVEN_NAME_GROUPS = "given-names"
# A case whose names hold more distinct words than this gets one `MANY_WORDS` pair row instead of every pair (which
# would be words² rows); a search of two or more words always looks at those cases too. Not a keyed hash: it says
# only that the case has many name words, which the number of its token rows says already.
MAX_PAIRED_WORDS = 12
MANY_WORDS = "*"
MAX_QUERY_PAIRS = 10  # pairs of a long query looked at to choose the rarest; any one pair finds every match


class CaseVault:
    """Data keys, sealing and blind-index terms for the cases of one intake database."""

    def __init__(self, keyring: Keyring, blind_index: BlindIndex,
                 stored_answers: Idempotency | None = None) -> None:
        self.keyring = keyring  # the kit's, re-read when its file changes (`runtime.keyring`)
        self.blind_index = blind_index
        # The kit's Idempotency-Key store: its answers to `POST /cases` repeat the case's data, sealed under a key
        # derived from the KEK, not the case's key; erasure deletes them by the case id stored beside them.
        self.stored_answers = stored_answers

    # ---- data keys -----------------------------------------------------------------------------------------------

    def still_unsealed(self) -> None:
        """`Sealed` once the keys were sealed: a data key opened before a seal (a long document download) is not
        used after it."""
        if getattr(self.keyring, "sealed", False):  # a sealable custody (kit.custody); a bare keyring never seals
            raise Sealed()

    def new_case_key(self) -> tuple[bytes, WrappedKey]:
        return self.keyring.new_wrapped_data_key()

    def case_key(self, session: Session, case_id: str) -> bytes:
        """The case's data key; `DecryptionError` when it was destroyed or does not unwrap."""
        row = session.get(CaseKey, case_id)
        if row is None:
            raise DecryptionError("the case's data key does not exist")
        return self.unwrap_case_key(row.kid, row.wrapped)

    def unwrap_case_key(self, kid: str | None, wrapped: bytes | None) -> bytes:
        """A data key from its stored wrap (read along with the case); `DecryptionError` when there is none."""
        if kid is None or wrapped is None:
            raise DecryptionError("the case's data key does not exist")
        return self.keyring.unwrap(WrappedKey(kid, wrapped))

    # ---- fields --------------------------------------------------------------------------------------------------

    @staticmethod
    def seal(data_key: bytes, table: str, column: str, row_id: str, value: Any) -> bytes:
        plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        plaintext += b" " * (-len(plaintext) % PAD_TO)  # JSON ignores trailing blanks
        return seal(data_key, plaintext, aad(table, column, row_id))

    @staticmethod
    def open(data_key: bytes, table: str, column: str, row_id: str, blob: bytes | None) -> Any:
        if blob is None:
            raise DecryptionError("the field holds no ciphertext")
        return json.loads(open_sealed(data_key, blob, aad(table, column, row_id)))

    @staticmethod
    def seal_bytes(data_key: bytes, table: str, column: str, row_id: str, data: bytes) -> bytes:
        """Raw bytes (a document's piece), sealed as they are: their length is stored in clear beside them anyway."""
        return seal(data_key, data, aad(table, column, row_id))

    @staticmethod
    def open_bytes(data_key: bytes, table: str, column: str, row_id: str, blob: bytes) -> bytes:
        return open_sealed(data_key, blob, aad(table, column, row_id))

    # ---- blind index ---------------------------------------------------------------------------------------------

    def name_terms(self, names: list[str], date_of_birth: date | None) -> set[tuple[str, str]]:
        """(kind, term) pairs for a case's names: a term per word key (each name group of an ambiguous short form),
        per two word keys (of any of its names), per whole name, and per whole name with the date of birth."""
        words = {word for name in names for word in name_keys.tokens(name)}
        terms = {(TOKEN_TERM, self._term(TOKEN_TERM, word)) for word in words}
        if len(words) > MAX_PAIRED_WORDS:
            terms.add((PAIR_TERM, MANY_WORDS))
        else:
            terms |= {(PAIR_TERM, self._pair(a, b)) for a, b in combinations(sorted(words), 2)}
        terms |= {(NAME_TERM, self._term(NAME_TERM, key)) for name in names for key in name_keys.name_keys(name)}
        if date_of_birth is not None:
            terms |= {(NAME_DOB_TERM, self._term(NAME_DOB_TERM, key))
                      for key in name_keys.name_and_birth_keys(names, date_of_birth)}
        return terms

    def query_terms(self, query: str) -> list[frozenset[str]]:
        """For each word of a search (whatever script or spelling), the terms of which a case must hold one: one
        term for most words, one per name group for an ambiguous short form (Саша). Repeated words once."""
        return list(dict.fromkeys(frozenset(self._term(TOKEN_TERM, key) for key in keys)
                                  for keys in name_keys.word_alternatives(query)))

    def query_pair_terms(self, query: str) -> list[frozenset[str]]:
        """For pairs of a query's words (at most `MAX_QUERY_PAIRS`), the pair terms of which a case holding both
        words holds one (or the `MANY_WORDS` row). Empty for a query of one distinct word."""
        words = sorted(set(tuple(sorted(keys)) for keys in name_keys.word_alternatives(query)))
        return [frozenset(self._pair(*sorted((x, y))) for x in a for y in b if x != y)
                for a, b in islice(combinations(words, 2), MAX_QUERY_PAIRS)]

    def _pair(self, a: str, b: str) -> str:
        return self._term(PAIR_TERM, f"{a} {b}")  # sorted by the callers; a key never holds a space

    def _term(self, kind: str, key: str) -> str:
        return self.blind_index.term(_TERM_DOMAINS[kind], key)


def scrub_write_ahead_log(session: Session) -> None:
    """After an erasure, the old page images holding the wrapped data key leave the disk (SQLite): the unit of work
    truncates the write-ahead log once the erasure is committed, before it answers."""
    scrub_after_commit(session)


def forget_in_stored_answers(session: Session, vault: CaseVault, case_id: str, row_id: str,
                             replace: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """What was removed from a case must not stay in the stored Idempotency-Key answers about it (a note's text in the
    answer to the POST that wrote it; a document's name and hash): each answer about the row `row_id` is sealed again
    as `replace(answer)` gives it, in this transaction, and the write-ahead log is truncated once it commits, so the
    old page images leave the disk (SQLite; `secure_delete` overwrites what the database itself freed)."""
    if vault.stored_answers is not None:
        vault.stored_answers.rewrite(session, case_id, lambda answer: replace(answer) if isinstance(answer, dict)
                                     and answer.get("id") == row_id else None)
    scrub_write_ahead_log(session)
