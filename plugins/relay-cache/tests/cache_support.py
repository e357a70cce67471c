"""Helpers for relay-cache's tests (a name of its own, not ``conftest``, so sessions that
hold every plugin's tests import the right one)."""

from __future__ import annotations


class Clock:
    """A clock the test moves by hand, so freshness is tested without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Calls:
    """How many requests reached the provider, by kind."""

    def __init__(self) -> None:
        self.chat = 0
        self.stream = 0
        self.inner = 0

    @property
    def total(self) -> int:
        return self.chat + self.stream
