"""A row's outcome: ok, skipped (with why) or error (with a reason kind and a message).

Rows keep it as text in their ``status`` column, so a results file stays plain JSON / CSV:
``"ok"``, ``"skipped: <why>"``, ``"error: <message>"``, and for an error of a known kind
``"error: <kind> <message>"`` (``"error: parity max |diff| 0.3 > 0.01"``). :class:`Status` writes that
text (``str(status)``) and reads it back (:meth:`Status.parse`); code asks ``.ok``, ``.skipped``,
``.error`` and ``.reason`` instead of matching prefixes. :func:`kinds` does the same for a column.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["ok", "skipped", "error"]
KINDS: tuple[Kind, ...] = ("ok", "skipped", "error")
# error kinds that other code acts on: a parity failure is the gate's own figure (a FAIL), not a
# measurement that could not run
REASONS = ("parity",)


@dataclass(frozen=True)
class Status:
    kind: Kind
    message: str = ""
    reason: str = ""  # one of REASONS, or "" (errors only)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"status kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.reason and (self.kind != "error" or self.reason not in REASONS):
            raise ValueError(f"status reason {self.reason!r} on a {self.kind!r} status")

    @classmethod
    def skip(cls, message: str) -> "Status":
        return cls("skipped", str(message))

    @classmethod
    def fail(cls, message: str, reason: str = "") -> "Status":
        return cls("error", str(message), reason)

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def skipped(self) -> bool:
        return self.kind == "skipped"

    @property
    def error(self) -> bool:
        return self.kind == "error"

    def __str__(self) -> str:
        if self.kind == "ok":
            return "ok"
        text = f"{self.reason} {self.message}".strip() if self.reason else self.message
        return f"{self.kind}: {text}"

    @classmethod
    def parse(cls, text: Any) -> "Status":
        """The status a row's ``status`` text says. A missing status (None, NaN, "") is ok, as rows
        of measurements that never fail carry none; text that names no kind is an error."""
        if isinstance(text, Status):
            return text
        if text is None or (isinstance(text, float) and math.isnan(text)):
            return OK
        text = str(text).strip()
        if text in ("", "ok"):
            return OK
        word, sep, rest = text.partition(":")
        if not sep or word not in ("skipped", "error"):
            return cls("error", text)
        rest = rest.strip()
        if word == "error":
            for reason in REASONS:
                if rest == reason or rest.startswith(reason + " "):
                    return cls("error", rest[len(reason):].strip(), reason)
        return cls(word, rest)  # type: ignore[arg-type]


OK = Status("ok")


def row_status(row: Any) -> Status:
    """The status of one row (a mapping with an optional ``status`` field)."""
    return Status.parse(row.get("status") if hasattr(row, "get") else None)


def kinds(column: Any) -> Any:
    """The kind ("ok", "skipped", "error") of every value of a pandas column of status texts."""
    return column.map(lambda v: Status.parse(v).kind)
