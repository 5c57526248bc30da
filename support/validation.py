"""The first problem of a pydantic `ValidationError`, ready to be phrased as one sentence.

Every boundary that validates input (tool arguments, admin bodies, booking rules, settings)
reports only the first problem, naming where it is; each phrases it for its own audience.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class FirstError:
    loc: tuple[int | str, ...]
    message: str  # pydantic's own text, e.g. "Input should be greater than or equal to 5"
    kind: str  # pydantic's error type, e.g. "missing"

    def dotted(self, empty: str) -> str:
        """('attendees', 0) → "attendees.0"; `empty` when the whole input is at fault."""
        return ".".join(str(part) for part in self.loc) or empty

    def path(self, empty: str) -> str:
        """('workingHours', 'monday', 0) → "workingHours.monday[0]"."""
        text = ""
        for part in self.loc:
            if part == "[key]":  # pydantic's marker for "the key itself was invalid"
                continue
            if isinstance(part, int):
                text += f"[{part}]"
            else:
                text += ("." if text else "") + str(part)
        return text or empty

    @property
    def reason(self) -> str:
        """The message without the "Value error, " pydantic puts before our own validators'."""
        return self.message.removeprefix("Value error, ")


def first_error(exc: ValidationError) -> FirstError:
    error = exc.errors()[0]
    return FirstError(tuple(error["loc"]), str(error["msg"]), str(error["type"]))
