"""identifiers, suppressions: the postal kind takes its API field's name, postal_address

The keyed hashes stay as they are: they were made under the label "postal",
which subjects/identifiers.py keeps for this kind (a suppression of an erased
person's address holds nothing else to re-hash).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 06:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("identifiers", "suppressions")


def _rename(old: str, new: str) -> None:
    for name in TABLES:
        table = sa.table(name, sa.column("kind", sa.String))
        op.execute(table.update().where(table.c.kind == old).values(kind=new))


def upgrade():
    _rename("postal", "postal_address")


def downgrade():
    _rename("postal_address", "postal")
