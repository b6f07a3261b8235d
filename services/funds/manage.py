"""Operator commands for funds, reached as `rehab ledger check` (or `python -m services.funds.manage ledger check`),
and its `keys rotate|status` (kit.keys_cli: funds' case keys, `models.WRAPPED_KEYS`), run by `rehab keys …`.

`ledger check` recomputes every grant from its transfers and compares: exit 0 when every grant balances, 1 on any
break, 2 when the database cannot be read. It prints grant codes and amounts only: the ledger holds nothing personal.

`erasures apply` (kit.erasures_cli), run by `rehab restore` after the databases are put back: every erasure of the
erasure ledger, re-applied by what the `case.erased` consumer applies (`projections.erase_case`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from sqlalchemy import inspect
from sqlmodel import Session

from kit import db
from kit.audit import AuditTrail
from kit.erasures import ErasureRecorded
from kit.erasures_cli import erasures_commands
from kit.idempotency import StoredAnswers
from kit.keys_cli import keys_commands
from services.funds import ledger, money, projections
from services.funds.config import FundsSettings
from services.funds.models import WRAPPED_KEYS, CaseView, kit_tables


def ledger_check(settings: FundsSettings) -> int:
    engine = db.make_engine(settings.db_url)
    try:
        if "transfers" not in inspect(engine).get_table_names():
            print("error: the funds database has no ledger (is REHAB_FUNDS_DATABASE_URL right, and has funds started "
                  "once?)", file=sys.stderr)
            return 2
        with db.transaction(db.make_session_factory(engine)) as session:
            results = ledger.check(session)
    finally:
        engine.dispose()
    broken = [r for r in results if r.breaks]
    for result in results:
        if result.currency:
            held = {name: money.format_amount(value, result.currency) for name, value in result.balances.items()}
            summary = (f"budget {money.format_amount(result.budget_minor, result.currency)} = available "
                       f"{held['available']} + committed {held['committed']} + paid {held['paid']} {result.currency}")
        else:
            summary = ""
        print(f"{'BROKEN' if result.breaks else 'ok':6} {result.code}  {summary}".rstrip())
        for problem in result.breaks:
            print(f"       - {problem}")
    print(f"{len(results) - len(broken)} of {len(results)} balance" if results else "no grants yet")
    return 1 if broken else 0


app = typer.Typer(name="funds-manage", help="The funds ledger, and funds' data keys.", no_args_is_help=True,
                  add_completion=False)
app.add_typer(keys_commands(FundsSettings, WRAPPED_KEYS), name="keys")
ledger_app = typer.Typer(help="The funds ledger: check that it balances.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


def reapply_erasure(session: Session, audit: AuditTrail, answers: StoredAnswers, entry: ErasureRecorded) -> bool:
    """What `case.erased` does here, unless the case is erased here already; a case this database never heard of
    is recorded as erased all the same."""
    known = session.get(CaseView, entry.case_id)
    if known is not None and known.status == "erased":
        return False
    projections.erase_case(session=session, audit=audit, answers=answers, case_id=entry.case_id,
                           actor="system:erasure-ledger")
    return known is not None


app.add_typer(erasures_commands(FundsSettings, kit_tables, Path(__file__).parent / "migrations", reapply_erasure),
              name="erasures")


@ledger_app.command("check")
def check_command() -> None:
    """Recompute every grant from its transfers: exit 1 on any break, 2 when the database cannot be read."""
    raise typer.Exit(ledger_check(FundsSettings()))


def main() -> None:
    app(prog_name="rehab")  # reached as `rehab ledger …`: its help says so


if __name__ == "__main__":
    main()
