"""Callers in and out of CSV files with the columns phone_number, name, blocked.

An import is read and checked whole, then planned against the database (what would be
created, changed or left alone) for staff to confirm, then applied all or nothing. A column
the file does not have is never written: a CRM export with names and numbers leaves every
caller's blocked flag as it is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from phonenumber_field.phonenumber import to_python

from conversations.models import Caller
from conversations.names import search_key, validate_printable

COLUMNS = ["phone_number", "name", "blocked"]
TRUE_WORDS = {"1", "true", "yes", "y", "blocked"}
FALSE_WORDS = {"", "0", "false", "no", "n"}
NAME_LENGTH = Caller._meta.get_field("name").max_length
# OWASP's CSV-injection rule: Excel, Sheets and LibreOffice run a cell that starts with one
# of these as a formula, unless a leading apostrophe makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# How much of a bad value an error message quotes, so a huge cell cannot flood the page.
QUOTE_LENGTH = 40
# Rows looked up per query: under every database's limit on bound parameters.
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class CallerRow:
    line: int
    phone_number: str
    name: str | None  # None: the file has no name column.
    blocked: bool | None  # None: the file has no blocked column.

    def as_list(self) -> list[Any]:
        """A JSON-friendly form, to keep a previewed import in the staff user's session."""
        return [self.line, self.phone_number, self.name, self.blocked]

    @classmethod
    def from_list(cls, values: list[Any]) -> CallerRow:
        line, phone_number, name, blocked = values
        return cls(line=line, phone_number=phone_number, name=name, blocked=blocked)


@dataclass
class ImportPlan:
    created: list[CallerRow] = field(default_factory=list)
    # Each changed caller with its changes: field name -> (now, after the import).
    updated: list[tuple[CallerRow, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    unchanged: int = 0
    # The callers as they were when planned, by number (locked when applying).
    existing: dict[str, Caller] = field(default_factory=dict, repr=False)


class CallerCsvError(ValueError):
    """The file cannot be imported; `problems` names each bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_callers(file: IO[bytes], max_bytes: int | None = None) -> list[CallerRow]:
    """Read and check every row first, so that a bad line imports nothing."""
    text = _text_of(file, settings.CALLER_IMPORT_MAX_BYTES if max_bytes is None else max_bytes)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        columns = _columns(next(reader, []))
        return _rows(reader, columns)
    except csv.Error as error:
        # The reader cannot find where the broken cell ends, so the rest of the file is unreadable.
        raise CallerCsvError([f"Line {reader.line_num}: {_csv_error(error)}"]) from error


def _text_of(file: IO[bytes], max_bytes: int) -> str:
    data = file.read(max_bytes + 1)  # Never more than the limit, whatever the upload's size.
    if len(data) > max_bytes:
        raise CallerCsvError(
            [f"The file is larger than {filesizeformat(max_bytes)}; split it into smaller files."]
        )
    try:
        text = data.decode("utf-8-sig")  # Spreadsheets often start the file with a BOM.
    except UnicodeDecodeError as error:
        raise CallerCsvError(["The file is not UTF-8 text; save it as CSV UTF-8."]) from error
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise CallerCsvError(
            [f"Line {line}: the file holds a NUL byte, so it is not a CSV text file; save it as CSV UTF-8."]
        )
    return text


def column_key(header: str) -> str:
    """Headers as spreadsheets write them: "Phone Number", "phone_number", "PHONE-NUMBER"."""
    return re.sub(r"[\s_-]+", "_", header.strip().casefold())


def _columns(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = column_key(name)
        if key in COLUMNS and key in columns:
            raise CallerCsvError([f"Line 1: the column {key} appears twice."])
        columns.setdefault(key, index)
    if "phone_number" not in columns:
        raise CallerCsvError(
            [
                "Line 1: the header needs a phone_number column (name and blocked are optional; "
                "other columns are ignored)."
            ]
        )
    return columns


def _rows(reader: Iterator[list[str]], columns: dict[str, int]) -> list[CallerRow]:
    rows: list[CallerRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num  # type: ignore[attr-defined]
        if not any(cell.strip() for cell in cells):
            continue  # Spreadsheets leave blank lines at the end.
        try:
            caller = _caller_row(line, cells, columns)
        except ValueError as error:
            problems.append(f"Line {line}: {error}")
            continue
        if caller.phone_number in seen:
            problems.append(
                f"Line {line}: {caller.phone_number} is already on line {seen[caller.phone_number]}."
            )
            continue
        seen[caller.phone_number] = line
        rows.append(caller)
    if problems:
        raise CallerCsvError(problems)
    return rows


def _caller_row(line: int, cells: list[str], columns: dict[str, int]) -> CallerRow:
    def cell(column: str) -> str | None:
        if column not in columns:
            return None
        index = columns[column]
        return unprotect(cells[index]).strip() if index < len(cells) else ""

    raw_number = cell("phone_number") or ""
    number = to_python(raw_number, region=settings.PHONENUMBER_DEFAULT_REGION)
    if not number or not number.is_valid():
        raise ValueError(f"{_quote(raw_number)} is not a valid phone number.")
    return CallerRow(
        line=line, phone_number=number.as_e164, name=_name(cell("name")), blocked=_blocked(cell("blocked"))
    )


def _name(name: str | None) -> str | None:
    if name is None:
        return None
    if not name:
        raise ValueError("the name is empty.")
    if NAME_LENGTH is not None and len(name) > NAME_LENGTH:
        raise ValueError(f"the name is longer than {NAME_LENGTH} characters.")
    try:
        validate_printable(name)
    except ValidationError as error:
        raise ValueError(f"the name {_quote(name)} holds control characters; remove them.") from error
    return name


def _blocked(blocked: str | None) -> bool | None:
    if blocked is None:
        return None
    word = blocked.lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"blocked must be yes or no, not {_quote(blocked)}.")
    return word in TRUE_WORDS


def _quote(value: str) -> str:
    return repr(value if len(value) <= QUOTE_LENGTH else value[:QUOTE_LENGTH] + "…")


def _csv_error(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return f"a cell is longer than {csv.field_size_limit():,} characters; is this a CSV file of callers?"
    return f"this is not readable CSV ({error})."


def import_plan(rows: list[CallerRow], *, lock: bool = False) -> ImportPlan:
    """What importing the rows would do now: callers created, changed (and how), left alone."""
    plan = ImportPlan(existing=_existing(rows, lock=lock))
    problems: list[str] = []
    for row in rows:
        caller = plan.existing.get(row.phone_number)
        if caller is None:
            if row.name is None:
                problems.append(
                    f"Line {row.line}: {row.phone_number} is not a caller yet and the file has no name column."
                )
                continue
            plan.created.append(row)
            continue
        changes = {
            name: (getattr(caller, name), value)
            for name, value in (("name", row.name), ("blocked", row.blocked))
            if value is not None and getattr(caller, name) != value
        }
        if changes:
            plan.updated.append((row, changes))
        else:
            plan.unchanged += 1
    if problems:
        raise CallerCsvError(problems)
    return plan


def _existing(rows: list[CallerRow], *, lock: bool) -> dict[str, Caller]:
    callers = Caller.objects.select_for_update() if lock else Caller.objects.all()
    found: dict[str, Caller] = {}
    for start in range(0, len(rows), LOOKUP_BATCH):
        numbers = [row.phone_number for row in rows[start : start + LOOKUP_BATCH]]
        for caller in callers.filter(phone_number__in=numbers):
            found[str(caller.phone_number)] = caller
    return found


def callers_import(rows: list[CallerRow]) -> ImportPlan:
    """Apply the rows, all or none, writing only the columns the file has; return what was done."""
    with transaction.atomic():
        plan = import_plan(rows, lock=True)
        now = timezone.now()
        try:
            Caller.objects.bulk_create(
                [
                    Caller(
                        phone_number=row.phone_number,
                        name=row.name or "",
                        name_search=search_key(row.name or ""),
                        blocked=bool(row.blocked),
                    )
                    for row in plan.created
                ],
                batch_size=LOOKUP_BATCH,
            )
        except IntegrityError as error:
            raise CallerCsvError(
                ["Someone added one of these callers meanwhile; upload the file again to preview anew."]
            ) from error
        _update(plan, now)
    return plan


def _update(plan: ImportPlan, now: Any) -> None:
    touched: dict[frozenset[str], list[Caller]] = {}
    for row, changes in plan.updated:
        caller = plan.existing[row.phone_number]
        for name, (_, value) in changes.items():
            setattr(caller, name, value)
        caller.name_search = search_key(caller.name)
        caller.updated_at = now
        touched.setdefault(frozenset(changes), []).append(caller)
    # One UPDATE per set of changed columns, so that no column the file lacks is written.
    for changed, group in touched.items():
        written = [*sorted(changed), "updated_at"] + (["name_search"] if "name" in changed else [])
        Caller.objects.bulk_update(group, written, batch_size=LOOKUP_BATCH)


def unprotect(value: str) -> str:
    """Undo the export's formula protection: "'+14155552222" -> "+14155552222"."""
    if value.startswith("'") and value[1:2] and value[1] in FORMULA_STARTS:
        return value[1:]
    return value


def protect(value: str) -> str:
    """A cell spreadsheets show as text, never run as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def write_callers(callers: Iterable[Caller], out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for caller in callers:
        writer.writerow(
            [protect(str(caller.phone_number)), protect(caller.name), "yes" if caller.blocked else "no"]
        )
