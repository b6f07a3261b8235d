"""Operator commands for funds, reached as `rehab ledger check` (or `python -m services.funds.manage ledger check`).

`ledger check` recomputes every grant from its transfers and compares: exit 0 when every grant balances, 1 on any
break, 2 when the database cannot be read. It prints grant codes and amounts only: the ledger holds nothing personal.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import inspect

from kit import db
from services.funds import ledger, money
from services.funds.config import FundsSettings


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rehab ledger", description="The funds ledger.")
    groups = parser.add_subparsers(dest="group", required=True)
    ledger_group = groups.add_parser("ledger", help="the double-entry ledger").add_subparsers(dest="command",
                                                                                               required=True)
    ledger_group.add_parser("check", help="recompute every grant from its transfers; non-zero exit on any break")
    parser.parse_args(argv)
    return ledger_check(FundsSettings())


if __name__ == "__main__":
    raise SystemExit(main())
