"""The error types shared by standardisation and validation: every problem names its row and field."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class RowProblem(Exception):
    """One thing wrong with one row. ``field`` is a path into the *source* row, e.g. ``conversations[2].value``."""

    kind: str          # short category, counted in reports: empty_content, unknown_role, ...
    field: str
    message: str
    fix: str
    row: int | None = None   # 0-based index of the row in its source
    id: str | None = None
    source: str | None = None

    def where(self) -> str:
        parts = [f"row {self.row}" if self.row is not None else "a row"]
        if self.id is not None:
            parts.append(f"(id {self.id!r})")
        if self.source:
            parts.append(f"of {self.source}")
        return " ".join(parts)

    def __str__(self) -> str:
        return f"{self.where()}: {self.field}: {self.message}. Fix: {self.fix}"

    def to_dict(self) -> dict:
        return asdict(self)


class DataValidationError(ValueError):
    """Malformed input rows under ``data.invalid=fail``; the message names the first row and field."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        first = problems[0]
        more = f" ({len(problems) - 1} more problem(s) in this row)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}. Or set data.invalid=drop to drop malformed rows and get a report.")
