"""idempotency keys: subject_id, keyed fingerprints (kit.table_changes.idempotency_subject_id_upgrade)

Revision ID: a07cac317501
Revises: 58a69ed4a641
Create Date: 2026-12-02 13:31:46.881407
"""
from typing import Sequence, Union

from kit.table_changes import idempotency_subject_id_downgrade, idempotency_subject_id_upgrade


revision: str = 'a07cac317501'
down_revision: Union[str, None] = '58a69ed4a641'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    idempotency_subject_id_upgrade()


def downgrade() -> None:
    idempotency_subject_id_downgrade()
