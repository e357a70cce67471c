"""What every Google API's JSON shares: ``google.rpc.Status`` errors and RFC 3339 times.

Pure functions of the wire's values; relay-vertex reads its own answers with them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["STATUS_CODES", "http_status", "timestamp_seconds"]

# google.rpc status names and the HTTP status each comes with (google/rpc/code.proto), so
# that an error object in a stream (which arrives after a 200) or in a batch output line
# (which carries only the numeric code) is classified like the same error as an answer.
STATUS_CODES: Mapping[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# google.rpc.Code by number: a batch output line's error is a google.rpc.Status, whose
# ``code`` is this number, not an HTTP status.
_RPC_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def http_status(error: Mapping[str, Any]) -> int:
    """The HTTP status a google.rpc.Status stands for: its code is google.rpc.Code's
    number (an HTTP status when it is 100 or more)."""
    code = error.get("code")
    if isinstance(code, int) and code >= 100:
        return code
    if isinstance(code, int) and 0 < code < len(_RPC_NAMES):
        return STATUS_CODES[_RPC_NAMES[code]]
    return STATUS_CODES.get(str(error.get("status")), 500)


def timestamp_seconds(value: Any) -> float | None:
    """RFC 3339 (``2025-07-28T09:30:12.123456789Z``) as Unix seconds. Python before 3.11
    reads neither the Z nor nine fractional digits, hence the regex."""
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    moment = datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]:0<6}{zone}")
    return moment.timestamp()
