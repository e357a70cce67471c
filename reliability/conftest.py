"""The suite's session: its figures, written at the end when every test module ran
(``build/reliability/results-<scale>.json``; the published ``reliability/results-<scale>.json``
and ``docs/reliability.md`` too when ``RELAY_RELIABILITY_UPDATE_DOCS=1`` and nothing failed)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from reliability.support import FIGURES

# Hypothesis keeps caches in ./.hypothesis even without an example database; this suite
# writes nothing outside reliability/ and temporary directories.
_HYPOTHESIS_HOME = Path(tempfile.mkdtemp(prefix="relay-reliability-hypothesis-"))
set_hypothesis_home_dir(_HYPOTHESIS_HOME)

_state: dict[str, Any] = {"started": time.time(), "failed": 0}


def pytest_sessionstart(session: pytest.Session) -> None:
    _state["started"] = time.time()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _state["failed"] += 1
    elif report.when == "call" and hasattr(report, "wasxfail"):
        FIGURES.findings.append({"test": report.nodeid, "bug": str(report.wasxfail)})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)
    if not FIGURES.complete():
        return  # part of the suite ran: nothing to publish
    from reliability.report import write

    seconds = time.time() - _state["started"]
    clean = exitstatus == 0 and _state["failed"] == 0
    asked = os.environ.get("RELAY_RELIABILITY_UPDATE_DOCS") == "1"
    written = write(FIGURES, seconds=seconds, failures=_state["failed"], docs=clean and asked)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for path in written:
            reporter.write_line(f"reliability: wrote {path}")
