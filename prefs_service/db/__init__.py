"""Everything about talking to the database that is not a table of ours.

- `types`: column types and the declarative base every model shares;
- `backend`: what differs between SQLite and PostgreSQL, in one object;
- `scopes`: the read-only and writing transaction scopes a boundary picks;
- `fast`: the one fast path, for the statements that run by the thousand a second;
- `engine`: what every connection needs, bound to `db.engine` in `init_app`;
- `outage`: telling a lost database apart from a bug;
- `files`: files written with a transaction, removed if it does not commit.
"""
