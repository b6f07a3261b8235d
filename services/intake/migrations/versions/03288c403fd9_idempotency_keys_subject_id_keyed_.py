"""idempotency keys: subject_id, keyed fingerprints (kit.table_changes.idempotency_subject_id_upgrade)

Revision ID: 03288c403fd9
Revises: 95a19d0ce372
Create Date: 2026-12-02 13:31:45.142910
"""
from typing import Sequence, Union

from kit.table_changes import idempotency_subject_id_downgrade, idempotency_subject_id_upgrade


revision: str = '03288c403fd9'
down_revision: Union[str, None] = '95a19d0ce372'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    idempotency_subject_id_upgrade()


def downgrade() -> None:
    idempotency_subject_id_downgrade()
