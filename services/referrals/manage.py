"""Operator commands for referrals: its `keys rotate|status` (kit.keys_cli), run by `rehab keys rotate|status|retire`
as `python -m services.referrals.manage keys …`, once for referrals as for intake and funds.

Referrals stores two wrapped data keys per referral (the packet key and the reply key, `models.WRAPPED_KEYS`):
`keys rotate` re-wraps both under the active key-encryption key while the service runs; `keys status` counts them
per KEK. A destroyed key (NULL) is neither re-wrapped nor counted.

`erasures apply` (kit.erasures_cli), run by `rehab restore` after the databases are put back: every erasure of the
ledger, re-applied by what the `case.erased` consumer applies (`projections.forget_case`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from sqlmodel import Session

from kit.audit import AuditTrail
from kit.erasures import ErasureRecorded
from kit.erasures_cli import erasures_commands
from kit.idempotency import StoredAnswers
from kit.keys_cli import keys_commands
from services.referrals import projections
from services.referrals.config import ReferralsSettings
from services.referrals.domain import CaseStatus
from services.referrals.models import WRAPPED_KEYS, KnownCase, kit_tables

app = typer.Typer(name="referrals-manage", help="Referrals' data keys.", no_args_is_help=True, add_completion=False)
app.add_typer(keys_commands(ReferralsSettings, WRAPPED_KEYS), name="keys")


def reapply_erasure(session: Session, audit: AuditTrail, answers: StoredAnswers, entry: ErasureRecorded) -> bool:
    """What `case.erased` does here, unless the case is erased here already; a case this database never heard of
    is recorded as erased all the same (an older event about it, replayed, then changes nothing)."""
    known = session.get(KnownCase, entry.case_id)
    if known is not None and known.status == CaseStatus.ERASED:
        return False
    projections.forget_case(session, audit, case_id=entry.case_id, answers=answers)  # type: ignore[arg-type]
    return known is not None


app.add_typer(erasures_commands(ReferralsSettings, kit_tables, Path(__file__).parent / "migrations", reapply_erasure),
              name="erasures")


def main() -> None:
    app(prog_name="rehab")  # reached through `rehab keys …`: its help says so


if __name__ == "__main__":
    main()
