"""aid people: a sum of money is published by how many distinct people are in it, not by its payments

- `monthly_amounts.people`: the distinct people (cases) in each money cell, what the disclosure control now goes by;
  one person's five payments in a month and category had made their aid a published figure.
- `aid_people`: one row per money cell and person, the person a keyed hash of the cell and the case id together
  (`handlers.PersonIndex.in_cell`), to count each person once; erasing the case deletes its rows.
- `erased_people`: the keyed hashes of erased people, so that an event of theirs applied late is not remembered again.

Cells summed before this revision: who was in them was never kept, so their people are not known. They are set to 0,
which the report reads as "not known" and withholds ("<5") until `rehab reports rebuild` counts them from the streams.
Not set from `payments`: a cell's payments are at least its people, so that would over-state them and publish again
exactly the sums this revision withholds (the one person paid five times). The safe side for privacy is to show less
until the people are counted; 0 also stays a lower bound afterwards, since only people seen from now on are added.

Revision ID: 89ad535f5883
Revises: 5d2b73fd8ec2
Create Date: 2026-12-04 10:00:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '89ad535f5883'
down_revision: Union[str, None] = '5d2b73fd8ec2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # A plain ADD COLUMN (no copy of the table); existing cells get 0: not known, withheld until a rebuild.
    op.add_column('monthly_amounts', sa.Column('people', sa.BigInteger(), server_default='0', nullable=False))
    op.create_table('aid_people',
    sa.Column('person', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('basis', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.PrimaryKeyConstraint('person', 'month', 'stage', 'basis', 'category', 'currency')
    )
    op.create_table('erased_people',
    sa.Column('person', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('person')
    )


def downgrade() -> None:
    op.drop_table('erased_people')
    op.drop_table('aid_people')
    # `ALTER TABLE … DROP COLUMN` in place (SQLite 3.35+): the column is in no key or index.
    with op.batch_alter_table('monthly_amounts', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('people')
