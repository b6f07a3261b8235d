"""revoked access: ended sessions this service refuses (kit.table_changes.revoked_access_upgrade)

Revision ID: 2e17a2134746
Revises: a70d1da0aee4
Create Date: 2026-12-02 20:30:58.736751
"""
from typing import Sequence, Union

from kit.table_changes import revoked_access_downgrade, revoked_access_upgrade


revision: str = '2e17a2134746'
down_revision: Union[str, None] = 'a70d1da0aee4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    revoked_access_upgrade()


def downgrade() -> None:
    revoked_access_downgrade()
