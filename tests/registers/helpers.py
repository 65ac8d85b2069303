"""Register files as the registers publish them, and what a check would read."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.registers import keys
from prefs_service.registers.models import CURRENT, FULL, RegisterEntry, RegisterList
from prefs_service.subjects.identifiers import identifier_hash

# Valid numbers, as written in each register's file, and their E.164 form.
UK = [
    ("0207 3787244", "+442073787244"),
    ("01635 506160", "+441635506160"),
    ("0191 5657153", "+441915657153"),
    ("07860 338653", "+447860338653"),
]
US = [("2015550123", "+12015550123"), ("212,5550199", "+12125550199"), ("4155550100", "+14155550100")]
MPS = [
    (
        '"P","01022024","","","Mr","John","Smith","","1 High Street","","","Leeds","West Yorkshire","LS1 4AP",""',
        "1 High Street, Leeds, LS1 4AP",
    ),
    ('"X","15061999","","","Mrs","A","Jones","","22 Mill Lane","Headingley","","Leeds","","LS6 2AA",""', "22 Mill Lane, Leeds LS6 2AA"),
]


def write(path: Path, lines: list[str], *, crlf: bool = True) -> Path:
    path.write_bytes("".join(line + ("\r\n" if crlf else "\n") for line in lines).encode())
    return path


def fixed(number: str) -> str:
    """A TPS record: 12 characters, with or without the space after the dialling code."""
    return number.ljust(12)


def number_hash(register: str, e164: str) -> bytes:
    from prefs_service.registers import REGISTERS

    return identifier_hash(REGISTERS[register].identifier_kind, e164)


def listed(register: str, key_hash: bytes, *, connection=None) -> bool:
    """Whether the register's current list holds `key_hash`, as a check reads it."""
    current = (
        sa.select(RegisterList.id)
        .where(RegisterList.register == register, RegisterList.status == CURRENT, RegisterList.kind == FULL)
        .scalar_subquery()
    )
    statement = sa.select(RegisterEntry.flag).where(RegisterEntry.list_id == current, RegisterEntry.key_hash == key_hash)
    found = (connection or db.session).execute(statement).first()
    return found is not None


def mail(address: str) -> bytes:
    found = keys.mail_hash(address)
    assert found is not None
    return found
