"""idempotency keys: subject_id, keyed fingerprints (kit.table_changes.idempotency_subject_id_upgrade)

Revision ID: 450ddc00e8fb
Revises: fbd15f47cf9b
Create Date: 2026-12-02 13:31:49.611807
"""
from typing import Sequence, Union

from kit.table_changes import idempotency_subject_id_downgrade, idempotency_subject_id_upgrade


revision: str = '450ddc00e8fb'
down_revision: Union[str, None] = 'fbd15f47cf9b'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    idempotency_subject_id_upgrade()


def downgrade() -> None:
    idempotency_subject_id_downgrade()
