"""revoked access: ended sessions this service refuses (kit.table_changes.revoked_access_upgrade)

Revision ID: 375afa01c9cf
Revises: 78c7b5a19dfa
Create Date: 2026-12-02 20:31:01.067375
"""
from typing import Sequence, Union

from kit.table_changes import revoked_access_downgrade, revoked_access_upgrade


revision: str = '375afa01c9cf'
down_revision: Union[str, None] = '78c7b5a19dfa'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    revoked_access_upgrade()


def downgrade() -> None:
    revoked_access_downgrade()
