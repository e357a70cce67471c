"""What a key may do, as people write it: in the catalog's ``keys:`` entries, on
``relay keys create``'s command line and in ``POST /admin/keys`` bodies.

``team``, ``models`` (fnmatch patterns), ``requests_per_minute``, ``tokens_per_minute``,
``max_concurrent``, ``budget`` (``50/month``, ``5/day``, ``100`` in total, or a list of
them) and ``expires`` (an ISO date or time, UTC unless it says otherwise; on the command
line and the admin API also ``30d``, ``12h`` from now). One reader for all three, so a
key means the same wherever it was made; a mistake is a :class:`FieldError` naming the
field, which each caller points at its own place (catalog line, option, JSON field).
"""

from __future__ import annotations

import datetime
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen

from relay_serve._settings import Budget, Limits

__all__ = [
    "FIELDS",
    "FieldError",
    "KeyFields",
    "parse_budget",
    "parse_budgets",
    "parse_duration",
    "parse_expires",
    "read_fields",
]

#: The fields :func:`read_fields` takes, beside a key's name.
FIELDS = (
    "team",
    "models",
    "requests_per_minute",
    "tokens_per_minute",
    "max_concurrent",
    "budget",
    "expires",
)
_BUDGET = re.compile(r"^\s*\$?([0-9]+(?:\.[0-9]+)?)\s*(?:/\s*(day|month|total))?\s*$")
_RELATIVE = re.compile(r"^([0-9]{1,6})([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Names end up in logs, metrics and audit records: printable, short, no spaces.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")


class FieldError(ValueError):
    """A key field that cannot be read; ``field`` is its name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@frozen(kw_only=True)
class KeyFields:
    """A key's fields once read: everything an :class:`~relay_serve.ApiKey` holds
    besides its name and digest."""

    limits: Limits = attrs.field(factory=Limits)
    team: str | None = None
    expires_at: float | None = None


def check_name(name: object, what: str = "name") -> str:
    """``name`` if it is a usable key or team name, else :class:`FieldError`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise FieldError(
            what,
            f"{what} must be 1 to 64 letters, digits and . _ : @ - (starting with a letter "
            "or digit)",
        )
    return name


def parse_budget(value: object) -> Budget:
    """``50/month``, ``5/day``, ``100/total`` or ``100`` (in total) dollars."""
    if isinstance(value, bool):
        raise FieldError("budget", f"budget must be dollars like 50/month, not {value!r}")
    if isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise FieldError("budget", f"budget must be dollars like 50/month, not {value!r}")
    found = _BUDGET.match(text)
    if found is None or not math.isfinite(float(found[1])) or float(found[1]) <= 0:
        raise FieldError(
            "budget",
            f"budget {text!r} is not dollars > 0 per day, month or in total (50/month, 5/day, 100)",
        )
    return Budget(float(found[1]), found[2] or "total")  # type: ignore[arg-type]


def parse_budgets(value: object) -> tuple[Budget, ...]:
    """One budget or a list of them; at most one per period."""
    budgets = [parse_budget(each) for each in (value if isinstance(value, list) else [value])]
    periods = [budget.period for budget in budgets]
    for period in set(periods):
        if periods.count(period) > 1:
            raise FieldError("budget", f"budget: two budgets per {period}; give one")
    return tuple(budgets)


def parse_expires(value: object, *, now: float | None = None, relative: bool = True) -> float:
    """A UTC POSIX time from an ISO date (midnight UTC), an ISO date and time (UTC when
    it gives no offset), or with ``relative`` ``30d``/``12h``/``45m``/``2w`` from now."""
    now = time.time() if now is None else now
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, datetime.date):  # YAML reads 2027-01-01 as a date
        moment = datetime.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        found = _RELATIVE.match(value.strip())
        if found and relative:
            return now + int(found[1]) * _UNIT_SECONDS[found[2]]
        try:
            moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            hint = ", or 30d / 12h from now" if relative else ""
            raise FieldError(
                "expires",
                f"expires {value!r} is not an ISO date or time (2027-01-01, "
                f"2027-01-01T12:00:00Z{hint})",
            ) from None
    else:
        raise FieldError("expires", f"expires must be an ISO date or time, not {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def parse_duration(value: object, field: str = "grace") -> float:
    """Seconds from ``1h``, ``30m``, ``2d``, ``1w`` or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str):
        found = _RELATIVE.match(value.strip())
        if found:
            return float(int(found[1]) * _UNIT_SECONDS[found[2]])
        if value.strip().isdigit():
            return float(value.strip())
    raise FieldError(
        field, f"{field} must be a duration like 1h, 30m, 2d or seconds, not {value!r}"
    )


def _whole(field: str, value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise FieldError(field, f"{field} must be a whole number >= 1, not {value!r}")
    return value


def _models(value: object) -> tuple[str, ...]:
    entries = value.split(",") if isinstance(value, str) else value
    if not isinstance(entries, list):
        raise FieldError("models", "models must be a list of model names or patterns")
    models: list[str] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip() or len(entry) > 200:
            raise FieldError(
                "models", f"models: {entry!r} is not a model name or pattern (like openai/*)"
            )
        models.append(entry.strip())
    return tuple(models)


def read_fields(
    given: Mapping[str, Any], *, now: float | None = None, relative: bool = True
) -> KeyFields:
    """The :data:`FIELDS` in ``given`` (absent or null: no limit); ``relative`` allows
    ``expires: 30d`` (not in a catalog, which would then mean something new each
    time it is read)."""
    team = given.get("team")
    if team is not None:
        check_name(team, "team")
    budget = given.get("budget")
    # Through a dict: mypy cannot type the tuple converters of Limits' fields.
    values: dict[str, Any] = {
        "requests_per_minute": _whole("requests_per_minute", given.get("requests_per_minute")),
        "tokens_per_minute": _whole("tokens_per_minute", given.get("tokens_per_minute")),
        "max_concurrent": _whole("max_concurrent", given.get("max_concurrent")),
        "models": _models(given["models"]) if given.get("models") is not None else (),
        "budgets": parse_budgets(budget) if budget is not None else (),
    }
    limits = Limits(**values)
    expires = given.get("expires")
    return KeyFields(
        limits=limits,
        team=team,
        expires_at=None if expires is None else parse_expires(expires, now=now, relative=relative),
    )
