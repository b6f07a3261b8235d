"""payments: append-only still, but for forgetting: an update may only empty the clear reference and rate source
(and seal each once, where none was sealed), so that an erasure takes what older releases kept in clear and funds
seals it (services/funds/older_in_clear.py); every other update and every delete is refused as before

Revision ID: f7a9c3e5b1d8
Revises: e5f1a3b7c9d2
Create Date: 2026-12-06 11:45:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = 'f7a9c3e5b1d8'
down_revision: str | None = 'e5f1a3b7c9d2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What a payment says of the money never changes; its text in clear may only be emptied, and a sealed copy of it
# written once where there was none (sealing what an older release kept in clear), never changed afterwards.
_UNCHANGED = ("id", "disbursement_id", "transfer_id", "method", "paid_by", "paid_at", "paid_amount_minor",
              "paid_currency", "fx_rate", "converted_minor", "difference_minor", "difference_decision")
_FORGETS = " AND ".join([
    *(f"NEW.{column} IS NOT DISTINCT FROM OLD.{column}" for column in _UNCHANGED),
    "NEW.reference = ''",
    "(NEW.fx_source IS NULL OR NEW.fx_source = '')",
    "(OLD.reference_sealed IS NULL OR NEW.reference_sealed IS NOT DISTINCT FROM OLD.reference_sealed)",
    "(OLD.fx_source_sealed IS NULL OR NEW.fx_source_sealed IS NOT DISTINCT FROM OLD.fx_source_sealed)",
])


def _sqlite(condition: str) -> str:
    return condition.replace("IS NOT DISTINCT FROM", "IS")  # SQLite's IS compares NULLs as values


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION funds_payment_only_forgets() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {_FORGETS} THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'payments rows are append-only: write a reversing entry instead';
            END $$""")
        op.execute("DROP TRIGGER payments_append_only ON payments")
        op.execute("CREATE TRIGGER payments_append_only BEFORE DELETE ON payments "
                   "FOR EACH ROW EXECUTE FUNCTION funds_refuse_edit()")
        op.execute("CREATE TRIGGER payments_only_forget BEFORE UPDATE ON payments "
                   "FOR EACH ROW EXECUTE FUNCTION funds_payment_only_forgets()")
    else:
        op.execute("DROP TRIGGER payments_no_update")
        op.execute(f"CREATE TRIGGER payments_no_update BEFORE UPDATE ON payments WHEN NOT ({_sqlite(_FORGETS)}) "
                   "BEGIN SELECT RAISE(ABORT, 'payments rows are append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER payments_only_forget ON payments")
        op.execute("DROP TRIGGER payments_append_only ON payments")
        op.execute("DROP FUNCTION funds_payment_only_forgets()")
        op.execute("CREATE TRIGGER payments_append_only BEFORE UPDATE OR DELETE ON payments "
                   "FOR EACH ROW EXECUTE FUNCTION funds_refuse_edit()")
    else:
        op.execute("DROP TRIGGER payments_no_update")
        op.execute("CREATE TRIGGER payments_no_update BEFORE UPDATE ON payments "
                   "BEGIN SELECT RAISE(ABORT, 'payments rows are append-only'); END")
