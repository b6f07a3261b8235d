"""revoked access: ended sessions this service refuses (kit.table_changes.revoked_access_upgrade)

Revision ID: 613031eeaf55
Revises: 4af256712ade
Create Date: 2026-12-02 20:30:59.860557
"""
from typing import Sequence, Union

from kit.table_changes import revoked_access_downgrade, revoked_access_upgrade


revision: str = '613031eeaf55'
down_revision: Union[str, None] = '4af256712ade'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    revoked_access_upgrade()


def downgrade() -> None:
    revoked_access_downgrade()
