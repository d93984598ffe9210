"""Callers in and out of CSV files with the columns phone_number, name, blocked."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.db import transaction
from phonenumber_field.phonenumber import to_python

from conversations.models import Caller

COLUMNS = ["phone_number", "name", "blocked"]
TRUE_WORDS = {"1", "true", "yes", "y", "blocked"}
FALSE_WORDS = {"", "0", "false", "no", "n"}
NAME_LENGTH = Caller._meta.get_field("name").max_length


@dataclass(frozen=True)
class CallerRow:
    phone_number: str
    name: str
    blocked: bool


class CallerCsvError(ValueError):
    """The file cannot be imported; `problems` names each bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_callers(file: IO[bytes]) -> list[CallerRow]:
    """Read and check every row first, so that a bad line imports nothing."""
    try:
        text = file.read().decode("utf-8-sig")  # Spreadsheets often start the file with a BOM.
    except UnicodeDecodeError as error:
        raise CallerCsvError(["The file is not UTF-8 text; save it as CSV UTF-8."]) from error
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in ("phone_number", "name") if column not in (reader.fieldnames or [])]
    if missing:
        raise CallerCsvError(
            [f"Line 1: the header needs the columns {', '.join(COLUMNS)} (missing {', '.join(missing)})."]
        )
    rows: list[CallerRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for row in reader:
        try:
            caller = _caller_row(row)
        except ValueError as error:
            problems.append(f"Line {reader.line_num}: {error}")
            continue
        if caller.phone_number in seen:
            problems.append(
                f"Line {reader.line_num}: {caller.phone_number} is already on line {seen[caller.phone_number]}."
            )
            continue
        seen[caller.phone_number] = reader.line_num
        rows.append(caller)
    if problems:
        raise CallerCsvError(problems)
    return rows


def _caller_row(row: dict[str, str | None]) -> CallerRow:
    raw_number = (row.get("phone_number") or "").strip()
    number = to_python(raw_number, region=settings.PHONENUMBER_DEFAULT_REGION)
    if not number or not number.is_valid():
        raise ValueError(f"{raw_number!r} is not a valid phone number.")
    name = (row.get("name") or "").strip()
    if not name:
        raise ValueError("the name is empty.")
    if len(name) > NAME_LENGTH:
        raise ValueError(f"the name is longer than {NAME_LENGTH} characters.")
    blocked = (row.get("blocked") or "").strip().lower()
    if blocked not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"blocked must be yes or no, not {blocked!r}.")
    return CallerRow(phone_number=number.as_e164, name=name, blocked=blocked in TRUE_WORDS)


def callers_import(rows: list[CallerRow]) -> tuple[int, int]:
    """Create or update a Caller for each row, all or none; return (created, updated)."""
    numbers = [row.phone_number for row in rows]
    with transaction.atomic():
        existing = Caller.objects.filter(phone_number__in=numbers).count()
        Caller.objects.bulk_create(
            [Caller(phone_number=row.phone_number, name=row.name, blocked=row.blocked) for row in rows],
            batch_size=500,
            update_conflicts=True,
            unique_fields=["phone_number"],
            update_fields=["name", "blocked", "updated_at"],
        )
    return len(rows) - existing, existing


def write_callers(callers: Iterable[Caller], out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for caller in callers:
        writer.writerow([str(caller.phone_number), caller.name, "yes" if caller.blocked else "no"])
