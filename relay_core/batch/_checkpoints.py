"""Named points in a job's life where a crash must lose nothing.

Production code calls :func:`reached` at each; it does nothing. The crash tests run a
job in a subprocess that replaces it with "kill this process now" for one name, then
resume the job and check that nothing was lost or submitted twice.
"""

from __future__ import annotations

__all__ = ["reached"]


def reached(name: str) -> None:
    """Mark that the job passed ``name`` (a no-op outside the crash tests)."""
