"""documents: a case's files, sealed in chunks

- `documents`: one row per document of a case: kind, content type, size, number of chunks, who added it and when,
  in clear; its file name and SHA-256 sealed under the case's data key.
- `document_chunks`: the document's bytes in pieces of 256 KiB, each sealed under the case's data key with the
  document id and the piece's number in its associated data; `case_id` beside them, so erasure deletes them at once.

Revision ID: 03fc3e509511
Revises: 2e17a2134746
Create Date: 2026-12-03 02:10:57.741989
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '03fc3e509511'
down_revision: Union[str, None] = '2e17a2134746'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('documents',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('chunks', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('filename_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('sha256_sealed', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index('ix_documents_case_created', ['case_id', 'created_at', 'id'], unique=False)

    op.create_table('document_chunks',
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('data_sealed', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ),
    sa.PrimaryKeyConstraint('document_id', 'seq')
    )
    with op.batch_alter_table('document_chunks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_chunks_case_id'), ['case_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('document_chunks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_chunks_case_id'))

    op.drop_table('document_chunks')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index('ix_documents_case_created')

    op.drop_table('documents')
