"""register_entries partitioned by list on PostgreSQL (registers/partitions.py):
each full list is loaded into a table of its own, indexed once full and
attached. The entries present move to a partition per list. Nothing changes
on SQLite.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 12:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

OLD = "register_entries_unpartitioned"


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE register_entries RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT pk_register_entries TO pk_{OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT fk_register_entries_list_id_register_lists TO fk_{OLD}_list_id")
    op.execute(
        "CREATE TABLE register_entries ("
        " list_id BIGINT NOT NULL,"
        " key_hash BYTEA NOT NULL,"
        " flag VARCHAR(1),"
        " CONSTRAINT pk_register_entries PRIMARY KEY (list_id, key_hash),"
        " CONSTRAINT fk_register_entries_list_id_register_lists FOREIGN KEY (list_id) REFERENCES register_lists (id) ON DELETE CASCADE"
        ") PARTITION BY LIST (list_id)"
    )
    # Every full list, emptied ones too (a delta adds to it), and any list that holds entries.
    lists = f"SELECT id FROM register_lists WHERE kind = 'full' UNION SELECT DISTINCT list_id FROM {OLD} ORDER BY 1"
    for (list_id,) in bind.exec_driver_sql(lists).all():
        table = f"register_entries_l{int(list_id)}"
        op.execute(f"CREATE TABLE {table} (LIKE register_entries INCLUDING DEFAULTS)")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_list CHECK (list_id = {int(list_id)})")
        op.execute(f"INSERT INTO {table} SELECT list_id, key_hash, flag FROM {OLD} WHERE list_id = {int(list_id)} ORDER BY key_hash")
        op.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (list_id, key_hash)")
        op.execute(f"ALTER TABLE register_entries ATTACH PARTITION {table} FOR VALUES IN ({int(list_id)})")
    op.execute(f"DROP TABLE {OLD}")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"CREATE TABLE {OLD} (LIKE register_entries INCLUDING DEFAULTS)")
    op.execute(f"INSERT INTO {OLD} SELECT list_id, key_hash, flag FROM register_entries ORDER BY list_id, key_hash")
    op.execute("DROP TABLE register_entries")  # and its partitions
    # Tables of imports that died before attaching theirs.
    for (table,) in bind.exec_driver_sql(
        r"SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'register\_entries\_l%%'"  # %% for the driver's placeholders
    ).all():
        op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {OLD} RENAME TO register_entries")
    op.execute("ALTER TABLE register_entries ADD CONSTRAINT pk_register_entries PRIMARY KEY (list_id, key_hash)")
    op.execute(
        "ALTER TABLE register_entries ADD CONSTRAINT fk_register_entries_list_id_register_lists "
        "FOREIGN KEY (list_id) REFERENCES register_lists (id) ON DELETE CASCADE"
    )
