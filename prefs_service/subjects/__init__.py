"""People and their identifiers.

- `identifiers`: the kinds of identifier, their canonical form and keyed hash;
- `refs`: `SubjectRef`, naming a person by any key, and finding them by it;
- `service`: resolving, creating and changing people, each change audited;
- `models`: the tables.
"""
