"""idempotency keys: subject_id, keyed fingerprints (kit.table_changes.idempotency_subject_id_upgrade)

Revision ID: c1c551d9d8ea
Revises: a630e10abad9
Create Date: 2026-12-02 13:31:48.181195
"""
from typing import Sequence, Union

from kit.table_changes import idempotency_subject_id_downgrade, idempotency_subject_id_upgrade


revision: str = 'c1c551d9d8ea'
down_revision: Union[str, None] = 'a630e10abad9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    idempotency_subject_id_upgrade()


def downgrade() -> None:
    idempotency_subject_id_downgrade()
