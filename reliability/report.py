"""Writes the suite's figures: ``build/reliability/results-<scale>.json`` after every
complete run, and only when asked (``RELAY_RELIABILITY_UPDATE_DOCS=1``, which
``nox -s reliability -- --update-docs`` sets) and nothing failed, the published ones:
``reliability/results-<scale>.json``, ``docs/reliability.md`` and its plots
(``docs/reliability-*.svg``, drawn from the results by :func:`plots`, next to those in
``build/reliability/``). A plain run, CI's, leaves every tracked file as it was. Called
by conftest.py at the end of the session."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from reliability.support import SCALE, Figures

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "reliability.md"
BUILD = HERE.parent / "build" / "reliability"

TITLES = {
    "faults": "Faults: an engine job against a failing server (`test_faults.py`)",
    "streams": "Faults: streams (`test_faults.py`)",
    "kills_batch": "Kills: provider-batch submission (`test_kills.py`)",
    "kills_engine": "Kills: the engine (`test_kills.py`)",
    "hostile": "Hostile input (`test_hostile.py`)",
    "secrets": "Secrets (`test_secrets.py`)",
    "serve": "relay-serve under load (`test_serve_load.py`)",
    "serve_shared": "relay-serve processes sharing limits in Redis (`test_serve_shared_state.py`)",
    "ray_cluster": "An engine job on a local Ray cluster, a worker killed (`test_ray_cluster.py`)",
}

LABELS = {
    "requests": "requests in the job",
    "concurrency": "engine concurrency",
    "attempts": "HTTP attempts the server received",
    "faults": "faults injected, by kind",
    "fault_share": "share of attempts given a fault (slow drips included)",
    "billed": "answers billed (a real provider would charge)",
    "delivered": "answers delivered whole",
    "answered_first_run": "answered by the first run",
    "failed_first_run": "failed after retries in the first run, by error",
    "rerun_rounds": "re-runs until every request was answered",
    "answered_in_the_end": "answered in the end",
    "lost": "requests lost",
    "resent_after_answer": "requests sent again after their answer arrived",
    "billed_twice": "requests billed twice",
    "billed_twice_because": "how their paid answers were lost in transit (by request)",
    "first_run_seconds": "first run, seconds",
    "calls": "stream calls",
    "answered": "answered whole",
    "failed": "failed with a typed error, by error",
    "kills": "SIGKILLs",
    "killed_at": "killed at",
    "jobs": "jobs",
    "requests_per_job": "requests per job",
    "chunks_per_job": "provider batches per job",
    "provider_batches_created": "provider batches created",
    "duplicate_batches": "provider batches created twice",
    "sent": "requests sent",
    "sent_twice": "requests sent twice",
    "most_sent_twice_per_kill": "most sent twice after one kill",
    "open_at_kill": "being answered by the server at each kill",
    "in_flight_at_kill": "sent but not yet recorded at each kill",
    "answered_but_unrecorded_at_kill": "answered by the server but not recorded, at each kill",
    "torn_lines_repaired": "torn result lines cut off on resume",
    "catalogs": "catalogs tried",
    "jsonl": "JSONL request files tried, by outcome",
    "request_values": "request values tried, by outcome",
    "structure": "random JSON structured into Request",
    "job_ids": "job ids tried",
    "keys": "fake keys",
    "errors_checked": "error texts searched",
    "log_lines": "debug log lines searched",
    "cli_commands": "`relay` commands run",
    "files_scanned": "workspace and tmp files searched",
    "cassettes_scanned": "cassettes searched",
    "error_bodies_echoing_the_key": "error bodies that echoed the key",
    "keys_found": "keys found",
    "clients_per_burst": "clients at once per burst (each retries until answered)",
    "streaming_clients": "of which streaming",
    "max_concurrency": "relay-serve `max_concurrency` (upstream calls at once)",
    "max_queue": "relay-serve `max_queue` (requests waiting)",
    "upstream_latency_s": "upstream latency per answer, seconds (relay-mock)",
    "answered_first_attempt": "answered at the first attempt, per burst",
    "shed_429": "refused at the first attempt (429 `queue_full`), per burst",
    "refusals_including_retries": "429s over all attempts, per burst",
    "most_attempts": "most attempts one client needed, per burst",
    "errors": "5xx, resets, connection errors, malformed 429s or wrong answers",
    "health_checks_ok": "`/health` answered 200 during the burst, per burst",
    "health_checks_under_load": "of which with calls running or queued",
    "most_in_flight": "most upstream calls at once seen by `/health`",
    "most_queued": "most requests waiting seen by `/health`",
    "rss_baseline_mib": "server RSS after the warm-up, MiB",
    "rss_peak_mib": "server peak RSS (VmHWM) by the end of each burst, MiB",
    "rss_after_mib": "server RSS after each burst, MiB",
    "rss_margin_mib": "allowed above the warm-up after the first burst, MiB",
    "rss_growth_margin_mib": "allowed growth from one burst to the next, MiB",
    "processes": "`relay serve` processes over one Redis, and their workers",
    "clients_at_once": "clients at once, spread over the processes",
    "requests_per_minute": "the key's `requests_per_minute`, shared",
    "outcomes": "answers (200 admitted, 429 `rate_limit_exceeded`)",
    "burst_seconds": "seconds the burst took",
    "lease_ttl_s": "lease ttl, seconds (`max_concurrent` places of a dead worker lapse after it)",
    "kill_held_before_kill": "requests of the key held in Redis before the SIGKILL (4 + 3)",
    "kill_held_by_the_killed_worker": "of them, answered by the worker killed",
    "kill_seconds_until_count_true": "seconds after the kill until Redis counted the true number",
    "kill_held_after_ttl": "held one ttl after the kill (the other workers', renewed)",
    "kill_still_answering": "requests still being answered after the kill",
    "kill_answers_after_kill": "answers after the kill, of 6, across both processes",
    "kill_held_after_clients_left": "held after every client left",
    "outage_closed_answers": "`on_state_error: closed`, Redis down: answers",
    "outage_open_answers": "`on_state_error: open`, Redis down, rpm 20 local: answers",
    "outage_recovery_s": "seconds from Redis back to the first 200 (closed)",
    "after_recovery_answers": "both processes after recovery, rpm 20 shared: answers",
    "metrics_rejected": "`relay_serve_rejected_total` for `queue_full` (every 429 the clients got)",
}

FOUND = """\
The first runs of this suite (November 2026) found these; each is fixed, and the test
that found it now guards it.

- **The engine hung** when a plugin raised something other than a `RelayError`, or a
  stored request could not be read back (`max_tokens: NaN` was accepted, then `int(NaN)`
  failed): the task died silently and the writer waited for ever. Now a plugin's bug
  fails its request (kind `RuntimeError`, not retryable, logged with its traceback) and
  the job goes on; an unreadable line fails alone; a fault of the engine itself stops
  the run, resumable. `GenerationConfig` checks its values when made.
- **A kill lost up to 3 × concurrency paid answers**: answers waited in a queue for a
  single writer. Now the worker that got an answer writes it before asking for more: a
  kill costs at most the calls in flight.
- **A stream cut at a clean close looked complete** (relay-openai chat): now
  `MalformedResponse`; the plugin guide says every plugin must check the stream's end.
- **The catalog `timeout` bounded each read, not the answer**: a slow drip held a call
  (and an engine worker) indefinitely. Now it bounds the whole answer (uploads and
  streams: each read).
- **A dozen lines of nested YAML aliases took 24 s** (5^n expansion): now refused past
  100,000 values, at the entry that expands.
- **Nine raw exceptions from `submit_batch`** (non-UTF-8 or deeply nested JSONL,
  provider_args not a mapping, a malformed full request, a model, id or prompt of the
  wrong type, NaN ids stored as NULL): each is a `BatchInputError` naming file:line and
  what is wrong; `resume()` checks the job id like every other method; relay-mock's
  `state_dir` of the wrong type is a `ConfigError`.
- **Recording a cassette kept a key the provider echoed** in an error body: recording
  now masks keys in bodies and headers.
"""

# The attacks tried on Relay, one table row each: kept in a file of its own, as its rows
# are longer than a line of code.
ATTACKS = (HERE / "attacks.md").read_text()


EXPLAINED = """\
- **Faults** — `reliability/fault_server.py` is an OpenAI-compatible server on 127.0.0.1
  that, on a seeded schedule, answers 429 with `Retry-After`, 500, 503, nothing until the
  client has timed out, a reset connection, half a JSON body, a valid answer dripped
  slowly, or (for streams) an SSE stream cut mid-event; otherwise the echo of the prompt.
  It counts, per request, what it received, billed and delivered. `test_faults.py` runs a
  job of thousands of requests through the engine against it: the job ends; every request
  is answered with its own prompt's echo or failed with a typed, retryable error, in
  request order; nothing answered is sent again; a request is billed twice only when its
  first paid answer was lost in transit; re-running the job (the cache answers what was
  answered) ends with every request answered. Streams end whole or with a typed error.
- **Kills** — `test_kills.py` kills (SIGKILL) a process again and again, at the core's
  crash checkpoints and at random moments, while it submits provider batches (relay-mock,
  which keeps its batches in a directory as a provider does), resuming each time: results
  complete and correct, exactly one provider batch per chunk. The same against the engine:
  the server kills the client as a random request arrives and notes what was in flight;
  only requests in flight at a kill are sent twice.
- **Hostile input** — `test_hostile.py` (hypothesis) feeds the catalog loader arbitrary
  text, bytes and plausible-but-wrong structures; `submit_batch` JSONL files of random
  bytes and lines, near-miss requests and hostile values; and every job API hostile ids
  (traversal, absolute paths, NUL, unicode, very long). Relay must answer with a typed
  `RelayError` or accept the input, never hang, and create nothing outside the workspace.
  The smallest input of each raw exception earlier runs found stays as a test of its own.
- **Secrets** — `test_secrets.py` gives the providers recognisable fake keys, has the
  server echo the Authorization header into every error body, runs chat, streams,
  401/429/500 errors, an engine job, a provider-batch job and `relay` commands with debug
  logging, and searches every log line, error text, file and cassette for the keys.
- **relay-serve under load** — `test_serve_load.py` starts `relay serve` in its own process
  (so its RSS is its own) in front of relay-mock answering after 0.1 s, allowed 8 upstream
  calls and 16 waiting. After a small warm-up it fires hundreds of clients at once, some
  streaming, twice. Every answer is a 200 with the prompt's echo or a 429 with
  `Retry-After` and OpenAI's error shape (`server_overloaded` / `queue_full`): no 5xx, no
  reset or refused connection. Most of each burst is refused at once, `/health` answers
  throughout (never showing more than 8 calls or 16 waiting), and every refused client
  that waits `Retry-After` (plus jitter) and retries is answered in the end. `/metrics`
  counts exactly the 429s the clients got; in-flight and queue depth are back to 0 after
  each burst; RSS is within a margin of its level after the warm-up (16 MiB + 24 KiB per
  client: the allocators keep what the peak needed) and does not grow from the first
  burst to the second by more than 4 MiB. Clients open a connection per request: a
  client this loaded reads its answers late and would otherwise race uvicorn's 5 s
  keep-alive close, a reset that is the client's doing.
- **relay-serve sharing limits** — `test_serve_shared_state.py` starts two `relay serve
  --workers 2` processes over one catalog whose limits live in a real `redis-server`
  (`plugins.serve.state`). Hundreds (full: thousands) of clients at once, spread over the
  two, for one key's `requests_per_minute`: exactly that many are answered, the rest
  refused with 429 `rate_limit_exceeded` and OpenAI's `x-ratelimit-*` headers. A worker
  answering requests of a key with `max_concurrent` is SIGKILLed: the other workers keep
  answering (and uvicorn replaces it), and the key's count in Redis is back to the true
  number within the lease ttl, the others' leases renewed past it. Redis killed mid-run
  (one worker per process, so that `open`'s local limit is one process's): `on_state_error:
  closed` answers 503 `state_unavailable`, `open` admits under the process's own limit, each
  logging the outage once; Redis restarted: both are back on one shared limit within
  about a second.
- **An engine job on a Ray cluster** — `test_ray_cluster.py` starts a real one-node Ray
  cluster on 127.0.0.1 (`ray start --head` with 2 CPUs: two worker processes) and runs an
  engine job through relay-ray against the fault server, in ten shards, with the server's
  faults on and max_retries 2. A third of the way in, a worker process answering a shard
  is SIGKILLed; Ray runs its shard again, which skips what its part file holds. Every
  request gets exactly one result, in request order, each its own prompt's answer or a
  typed retryable error; `responses.jsonl` holds one line per request; and an answer the
  server delivered twice was either lost in transit or in flight in the killed worker
  (at most its concurrency).
"""


# ------------------------------------------------------------------ plots
# Drawn as SVG by hand, from the results alone: no plotting library in the session, and a
# text file that diffs. A white ground keeps them legible in the site's dark theme too.
PLOT_WIDTH = 640
INK, BAR, MARK, LIMIT = "#222", "#4a78b5", "#d9822b", "#b8322d"


def _svg(height: int, body: list[str], title: str) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{PLOT_WIDTH}" height="{height}" '
            f'viewBox="0 0 {PLOT_WIDTH} {height}" font-family="sans-serif" font-size="12">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{PLOT_WIDTH}" height="{height}" fill="#fff"/>',
            f'<text x="10" y="20" font-size="14" font-weight="bold" fill="{INK}">'
            f"{escape(title)}</text>",
            *body,
            "</svg>",
            "",
        ]
    )


def _hbars(
    title: str, rows: list[tuple[str, float]], unit: str, limit: tuple[str, float] | None = None
) -> str:
    """Horizontal bars, one a row, the value at the end of each; ``limit`` a red line."""
    left, right, top, step = 190, 70, 36, 24
    top_value = max([v for _, v in rows] + ([limit[1]] if limit else [])) or 1
    scale = (PLOT_WIDTH - left - right) / top_value
    height = top + step * len(rows) + (34 if limit else 14)
    body = []
    for index, (label, value) in enumerate(rows):
        y = top + index * step
        body += [
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" fill="{INK}">'
            f"{escape(label)}</text>",
            f'<rect x="{left}" y="{y + 3}" width="{value * scale:.1f}" height="{step - 6}" '
            f'fill="{BAR}"/>',
            f'<text x="{left + value * scale + 5:.1f}" y="{y + 15}" fill="{INK}">'
            f"{value:g}{unit}</text>",
        ]
    if limit:
        x, bottom = left + limit[1] * scale, top + step * len(rows)
        body += [
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{LIMIT}" '
            'stroke-width="2" stroke-dasharray="5,3"/>',
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" fill="{LIMIT}">'
            f"{escape(limit[0])}: {limit[1]:g}{unit}</text>",
        ]
    return _svg(height, body, title)


def _columns(
    title: str, series: list[tuple[str, str, list[float]]], limit: tuple[str, float], x_label: str
) -> str:
    """Columns, one group an x (the first series behind, the next in front of it), and a
    red line at ``limit``."""
    left, right, top, bottom = 40, 20, 54, 40
    plot_height = 200
    count = max(len(values) for _, _, values in series)
    top_value = max([limit[1], *(v for _, _, values in series for v in values)]) or 1
    width = (PLOT_WIDTH - left - right) / count
    y_of = lambda value: top + plot_height - value * plot_height / top_value  # noqa: E731
    body = []
    x = left
    for name, colour, _ in series:  # the legend
        body += [
            f'<rect x="{x}" y="30" width="12" height="12" fill="{colour}"/>',
            f'<text x="{x + 16}" y="40" fill="{INK}">{escape(name)}</text>',
        ]
        x += 16 + 7 * len(name) + 20
    for shrink, (_, colour, values) in enumerate(series):
        for index, value in enumerate(values):
            inset = width * (0.15 + 0.15 * shrink)
            body.append(
                f'<rect x="{left + index * width + inset:.1f}" y="{y_of(value):.1f}" '
                f'width="{width - 2 * inset:.1f}" height="{value * plot_height / top_value:.1f}" '
                f'fill="{colour}"/>'
            )
    base = top + plot_height
    body += [
        f'<line x1="{left}" y1="{base}" x2="{PLOT_WIDTH - right}" y2="{base}" stroke="{INK}"/>',
        f'<text x="{left - 6}" y="{base + 4}" text-anchor="end" fill="{INK}">0</text>',
        f'<line x1="{left}" y1="{y_of(limit[1]):.1f}" x2="{PLOT_WIDTH - right}" '
        f'y2="{y_of(limit[1]):.1f}" stroke="{LIMIT}" stroke-width="2" stroke-dasharray="5,3"/>',
        f'<text x="{left - 6}" y="{y_of(limit[1]) + 4:.1f}" text-anchor="end" '
        f'fill="{LIMIT}">{limit[1]:g}</text>',
        f'<text x="{PLOT_WIDTH - right}" y="{y_of(limit[1]) - 5:.1f}" text-anchor="end" '
        f'fill="{LIMIT}">{escape(limit[0])}</text>',
        f'<text x="{(left + PLOT_WIDTH - right) / 2}" y="{base + 24}" text-anchor="middle" '
        f'fill="{INK}">{escape(x_label)}</text>',
    ]
    return _svg(base + bottom, body, title)


def plots(data: dict[str, Any]) -> dict[str, str]:
    """The page's figures as SVG, by file name; a section the run lacks has none."""
    sections = data["sections"]
    drawn: dict[str, str] = {}
    faults = sections.get("faults")
    if faults:
        kinds = sorted(faults["faults"].items(), key=lambda item: -item[1])
        drawn["reliability-faults.svg"] = _hbars(
            f"Faults injected into an engine job of {faults['requests']:,} requests "
            f"({faults['lost']} lost)",
            [(kind.replace("_", " "), count) for kind, count in kinds],
            "",
        )
    kills = sections.get("kills_engine")
    if kills:
        drawn["reliability-kills.svg"] = _columns(
            f"The engine killed {kills['kills']} times: requests at stake at each kill",
            [
                ("sent, not yet recorded", BAR, kills["in_flight_at_kill"]),
                ("of them answered, not recorded", MARK, kills["answered_but_unrecorded_at_kill"]),
            ],
            ("engine concurrency", kills["concurrency"]),
            "each kill, in order",
        )
    serve = sections.get("serve")
    if serve:
        peaks = serve["rss_peak_mib"]
        drawn["reliability-serve-memory.svg"] = _hbars(
            f"relay-serve's memory, {serve['clients_per_burst']:,} clients a burst",
            [
                ("after the warm-up", serve["rss_baseline_mib"]),
                *((f"peak, burst {n}", peak) for n, peak in enumerate(peaks, 1)),
            ],
            " MiB",
            ("allowed", serve["rss_baseline_mib"] + serve["rss_margin_mib"]),
        )
    return drawn


# Where each plot goes on the page: after its section's table.
PLOTTED = {
    "faults": ("reliability-faults.svg", "faults injected into the engine job, by kind"),
    "kills_engine": ("reliability-kills.svg", "requests in flight at each kill of the engine"),
    "serve": ("reliability-serve-memory.svg", "relay-serve's memory in each burst"),
}


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render(data: dict[str, Any]) -> str:
    run = data["run"]
    scale = data["scale"]
    lines = [
        "# Reliability and security",
        "",
        "`reliability/` attacks Relay the way production does: a provider that fails on",
        "purpose, processes killed mid-job, hostile input, and keys that must not leak.",
        "This page and its plots are written by the suite at the end of a run with no",
        "failures, when asked (`--update-docs`, `reliability/report.py`); the raw figures are in",
        f"`reliability/results-{scale['name']}.json`.",
        "",
        f"Last run: {run['date']}, scale `{scale['name']}`, {run['seconds']:.0f} s on "
        f"{run['cpus']} CPUs (Python {run['python']}); "
        + (
            f"{len(data['known_bugs'])} known bugs open, each pinned by a strict expected failure."
            if data["known_bugs"]
            else "no known bug open."
        ),
        "",
        "## How to run",
        "",
        "```text",
        "nox -s reliability              # the CI size: under three minutes on two cores",
        "nox -s reliability -- full      # bigger numbers, by hand",
        "RELAY_RELIABILITY_SCALE=full pytest reliability   # the same without nox",
        "nox -s reliability -- full --update-docs   # and rewrite this page",
        "```",
        "",
        "| scale knob | ci | full |",
        "|---|---|---|",
    ]
    from reliability.support import SCALES

    for name in SCALES["ci"].__dataclass_fields__:
        if name != "name":
            lines.append(
                f"| {name.replace('_', ' ')} | {getattr(SCALES['ci'], name)} "
                f"| {getattr(SCALES['full'], name)} |"
            )
    lines += ["", "## What each test does", "", EXPLAINED, "## Figures", ""]
    for section, title in TITLES.items():
        values = data["sections"].get(section, {})
        lines += [f"### {title}", "", "| figure | value |", "|---|---|"]
        for key, value in values.items():
            lines.append(f"| {LABELS.get(key, key.replace('_', ' '))} | {_value(value)} |")
        lines.append("")
        if values and section in PLOTTED:
            name, alt = PLOTTED[section]
            lines += [f"![{alt}]({name})", ""]
    lines += ["## Attacks", "", ATTACKS, "## Bugs found", "", FOUND]
    if data["known_bugs"]:
        lines += [
            "## Known bugs, open",
            "",
            "Each is a test marked `xfail(strict=True)`: once the bug is fixed the test",
            "passes, strict mode reports that as a failure, and the marker goes.",
            "",
        ]
    for bug in data["known_bugs"]:
        lines.append(f"- `{bug['test'].split('::', 1)[-1]}`: {bug['bug']}")
    return "\n".join(lines).rstrip() + "\n"


def write(figures: Figures, *, seconds: float, failures: int, docs: bool) -> list[Path]:
    import os

    data = figures.as_json()
    data["run"] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(seconds, 1),
        "failures": failures,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    BUILD.mkdir(parents=True, exist_ok=True)
    results = BUILD / f"results-{SCALE.name}.json"
    results.write_text(text)
    written = [results]
    drawn = plots(data)
    for name, svg in drawn.items():
        (BUILD / name).write_text(svg)
        written.append(BUILD / name)
    if docs:
        published = HERE / f"results-{SCALE.name}.json"
        published.write_text(text)
        DOCS.write_text(render(data))
        written += [published, DOCS]
        for name, svg in drawn.items():
            (DOCS.parent / name).write_text(svg)
            written.append(DOCS.parent / name)
    return written
