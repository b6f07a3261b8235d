"""kit.audit.refusal_recorded: a refusal raised inside carries the entry it is to leave (BACKBONE, Audit: every refused
authorisation), for `answer_refusal` to write once the refused unit rolled back; nothing else is marked."""

from __future__ import annotations

import pytest

from kit.audit import refusal_recorded
from kit.errors import Conflict, RefusalEntry, Refused
from kit.problems import as_problem


CASE, OTHER = "0b6f2c5e-7d43-4a8e-9f1a-5c2d8e7b3a91", "7c1d9e2a-3b4f-4c5d-8e6f-1a2b3c4d5e6f"


def test_a_refusal_raised_inside_carries_who_what_and_which_record_and_the_innermost_names_it():
    with pytest.raises(Refused) as refused:
        with refusal_recorded(actor="cw-9", action="case.outer", target_id=OTHER):
            with refusal_recorded(actor="cw-9", action="case.access_refused", target_id=CASE.upper()):
                raise Refused("Not yours.", code="need-to-know")
    assert refused.value.audit_entry == RefusalEntry("cw-9", "case.access_refused", CASE)
    assert as_problem(refused.value).extra == {}  # nothing of it in the answer


def test_a_target_that_is_no_id_is_not_kept():
    """A caller's own text where an id goes (`?case_id=` holding a name, say) never reaches the trail."""
    for typed in ("Maryia Zhuk, born 1990", "", None):
        with pytest.raises(Refused) as refused:
            with refusal_recorded(actor="cw-9", action="case.access_refused", target_id=typed):
                raise Refused("Not yours.", code="need-to-know")
        assert refused.value.audit_entry == RefusalEntry("cw-9", "case.access_refused", None)


def test_nothing_but_a_refusal_is_marked_and_nothing_is_raised_without_one():
    with pytest.raises(Conflict) as conflict:
        with refusal_recorded(actor="cw-9", action="case.access_refused", target_id=CASE):
            raise Conflict("Closed.", code="case-closed")
    assert conflict.value.audit_entry is None  # a conflict leaves an entry only where it is asked for (`of`)
    with refusal_recorded(actor="cw-9", action="case.access_refused", target_id=CASE):
        pass


def test_a_conflict_leaves_its_entry_where_the_trail_is_to_keep_it():
    with pytest.raises(Conflict) as conflict:
        with refusal_recorded(actor="fin-1", action="disbursement.pay-refused", target_id=CASE, of=(Conflict,)):
            raise Conflict("Paid already.", code="already-paid")
    assert conflict.value.audit_entry == RefusalEntry("fin-1", "disbursement.pay-refused", CASE)
