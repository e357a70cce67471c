"""The pages, rendered on the server as plain HTML.

Everything that comes from the workspace (ids, descriptions, answers, error messages) is
user text and goes through :func:`e` on its way into the page; nothing here builds markup
from a value without it. ``static/dashboard.js`` renders the same rows from the JSON API
when the page refreshes itself, with ``textContent``, so it cannot inject markup either.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from relay_core import Job
from relay_dashboard._reader import (
    RESULT_STATES,
    STATUS_FILTERS,
    Filters,
    ResultRow,
    ResultsPage,
    Summary,
)

__all__ = ["error_page", "job_page", "jobs_page", "preview"]

# A glyph beside each status word, so status never rests on colour alone (and the word
# is always there for screen readers; the glyph is hidden from them).
GLYPHS = {
    "preparing": "…",
    "submitting": "↑",
    "submitted": "◷",
    "running": "▶",
    "completed": "✓",
    "failed": "✕",
    "cancelled": "⊘",
    "expired": "⌛",
    "interrupted": "⚠",
    "pending": "…",
    "unanswered": "–",
    "unreadable": "?",
}
PREVIEW_CHARS = 240
# (heading, numeric): numeric columns are right-aligned.
JOB_COLUMNS = (
    ("Job", False),
    ("Status", False),
    ("Mode", False),
    ("Provider", False),
    ("Model", False),
    ("Progress", False),
    ("Cost", True),
    ("Submitted", False),
    ("Finished", False),
)
RESULT_COLUMNS = (
    ("#", True),
    ("Request id", False),
    ("State", False),
    ("Answer or error", False),
    ("Tokens in → out", True),
    ("Cost", True),
)


def e(value: object) -> str:
    """``value`` as text safe inside an element or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def badge(state: str) -> str:
    return (
        f'<span class="badge badge-{e(state)}"><span aria-hidden="true">'
        f"{GLYPHS.get(state, '•')}</span> {e(state)}</span>"
    )


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return '<span class="muted">—</span>'
    moment = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return (
        f'<time datetime="{moment.isoformat(timespec="seconds")}">'
        f"{moment.strftime('%Y-%m-%d %H:%M')} UTC</time>"
    )


def money(amount: float) -> str:
    # Tiny per-request costs keep their significant digits; totals read as money.
    digits = 2 if amount >= 100 else 6 if 0 < amount < 0.01 else 4
    return f"${amount:,.{digits}f}"


def cost(job: Job) -> str:
    if not job.has_results:
        return '<span class="muted" title="known once the results are in">pending</span>'
    if job.cost.amount is None:
        return '<span class="muted" title="no price source knows this model">unknown</span>'
    source = job.cost.source.replace("_", " ")
    if job.cost.batch_discount_applied:
        source += " · batch price"
    return f'{money(job.cost.amount)}<span class="sub">{e(source)}</span>'


def progress(job: Job) -> str:
    counts = job.counts
    total = max(counts.total, 1)
    done = 100 * counts.completed / total
    failed = 100 * counts.failed / total
    return (
        '<div class="progress">'
        f'<div class="bar" aria-hidden="true"><span class="done" style="width:{done:.2f}%">'
        f'</span><span class="failed" style="width:{failed:.2f}%"></span></div>'
        f'<span class="counts">{counts.completed:,} done · {counts.failed:,} failed · '
        f"{counts.total:,} total</span></div>"
    )


def preview(row: ResultRow) -> str:
    """The first words of a row's answer, or its error, as plain text."""
    item = row.item
    if row.state == "unreadable":
        return f"the stored result could not be read ({row.problem})"
    if row.state == "pending":
        return "not answered yet"
    if row.state == "unanswered":
        return "no result: the job ended before this request was answered (see results.jsonl)"
    if item is None:
        return ""
    if item.response is not None:
        text = item.response.text or ""
        if not text and item.response.tool_calls:
            text = "tool calls: " + ", ".join(call.name for call in item.response.tool_calls)
    else:
        error = item.error
        text = f"{error.kind}: {error.message}" if error else "failed"
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _layout(title: str, body: str, *, page: str, data: Mapping[str, object]) -> str:
    attributes = " ".join(f'data-{e(key)}="{e(value)}"' for key, value in data.items())
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · Relay dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
</head>
<body data-page="{e(page)}" {attributes}>
<header class="top">
  <a class="brand" href="/">Relay <span>dashboard</span></a>
  <div class="refresh" id="refresh-controls" hidden>
    <label for="refresh-every">Auto-refresh</label>
    <select id="refresh-every">
      <option value="10">every 10 s</option>
      <option value="30">every 30 s</option>
      <option value="60">every minute</option>
      <option value="300">every 5 min</option>
    </select>
    <button type="button" id="refresh-pause" aria-pressed="false">Pause</button>
    <span class="muted" id="refresh-status" role="status" aria-live="polite"></span>
  </div>
</header>
<main>
{body}
</main>
<form id="token-form" class="token" hidden>
  <label for="token-input">This dashboard needs its access token for actions</label>
  <input id="token-input" type="password" autocomplete="off" required>
  <button type="submit">Use token</button>
</form>
</body>
</html>
"""


def _headings(columns: Iterable[tuple[str, bool]]) -> str:
    numeric_class = ' class="num"'
    return "".join(
        f'<th scope="col"{numeric_class if numeric else ""}>{e(name)}</th>'
        for name, numeric in columns
    )


def _options(values: Iterable[str], selected: str | None, *, any_label: str) -> str:
    out = [f'<option value="">{e(any_label)}</option>']
    for value in values:
        mark = " selected" if value == selected else ""
        out.append(f'<option value="{e(value)}"{mark}>{e(value)}</option>')
    return "".join(out)


def summary_html(summary: Summary) -> str:
    chips = "".join(
        f'<li>{badge(status)} <span class="n">{n:,}</span></li>'
        for status, n in summary.by_status.items()
    )
    if summary.interrupted:
        chips += f'<li>{badge("interrupted")} <span class="n">{summary.interrupted:,}</span></li>'
    notes = []
    if summary.cost_pending:
        notes.append(f"{summary.cost_pending:,} without results yet")
    if summary.cost_unknown:
        notes.append(f"{summary.cost_unknown:,} of unknown cost")
    note = f'<span class="sub">not counted: {e(", ".join(notes))}</span>' if notes else ""
    return f"""<section class="cards" id="summary" aria-label="Summary">
  <div class="card"><h2>Jobs</h2><p class="big" data-field="jobs">{summary.jobs:,}</p>
    <ul class="chips" data-field="by_status">{chips}</ul></div>
  <div class="card"><h2>Requests</h2><p class="big" data-field="requests">{summary.requests:,}</p>
    <p><span data-field="completed">{summary.completed:,}</span> done ·
       <span data-field="failed">{summary.failed:,}</span> failed</p></div>
  <div class="card"><h2>Cost</h2><p class="big" data-field="cost">{money(summary.cost)}</p>
    <p data-field="cost_note">{note}</p></div>
</section>"""


def job_row(job: Job) -> str:
    interrupted = f" {badge('interrupted')}" if job.interrupted else ""
    description = f'<span class="sub">{e(job.description)}</span>' if job.description else ""
    return f"""<tr data-job="{e(job.job_id)}">
  <td class="job"><a href="/jobs/{e(job.job_id)}">{e(job.job_id)}</a>{description}</td>
  <td>{badge(job.status)}{interrupted}</td>
  <td>{e(job.mode)}</td>
  <td>{e(", ".join(job.providers)) or '<span class="muted">—</span>'}</td>
  <td>{e(job.model) or '<span class="muted">—</span>'}</td>
  <td>{progress(job)}</td>
  <td class="num">{cost(job)}</td>
  <td>{when(job.submitted_at)}</td>
  <td>{when(job.finished_at)}</td>
</tr>"""


def jobs_page(
    *,
    jobs: list[Job],
    summary: Summary,
    filters: Filters,
    providers: list[str],
    workspace: str,
    data: Mapping[str, object],
) -> str:
    rows = "".join(job_row(job) for job in jobs)
    statuses = _options(STATUS_FILTERS, filters.status, any_label="Any status")
    provider_options = _options(providers, filters.provider, any_label="Any provider")
    since = filters.since.isoformat() if filters.since else ""
    until = filters.until.isoformat() if filters.until else ""
    body = f"""<div class="heading">
  <h1>Jobs</h1><p class="muted">Workspace <code>{e(workspace)}</code></p>
</div>
{summary_html(summary)}
<form class="filters" method="get" action="/" id="filters">
  <div><label for="f-status">Status</label>
    <select id="f-status" name="status">{statuses}</select></div>
  <div><label for="f-provider">Provider</label>
    <select id="f-provider" name="provider">{provider_options}</select></div>
  <div><label for="f-since">Submitted from</label>
    <input id="f-since" name="since" type="date" value="{e(since)}"></div>
  <div><label for="f-until">to</label>
    <input id="f-until" name="until" type="date" value="{e(until)}"></div>
  <div class="grow"><label for="f-q">Search id or description</label>
    <input id="f-q" name="q" type="search" value="{e(filters.q or "")}"
      placeholder="e.g. eval"></div>
  <div class="buttons"><button type="submit">Apply</button>
    <a href="/" class="button quiet">Clear</a></div>
</form>
<p class="muted" id="shown" role="status">{len(jobs):,} job{"" if len(jobs) == 1 else "s"} shown</p>
<div class="table-wrap">
<table class="jobs" id="jobs">
  <caption class="visually-hidden">Batch jobs, newest first</caption>
  <thead><tr>{_headings(JOB_COLUMNS)}</tr></thead>
  <tbody>{rows}</tbody>
</table>
<p class="empty" id="empty"{"" if not jobs else " hidden"}>No jobs match these filters.</p>
</div>"""
    return _layout("Jobs", body, page="jobs", data=data)


def _result_row(row: ResultRow) -> str:
    item = row.item
    response = item.response if item else None
    tokens = (
        f"{response.usage.input_tokens:,} → {response.usage.output_tokens:,}"
        if response is not None and response.usage is not None
        else ""
    )
    amount = (
        money(response.cost.amount)
        if response is not None and response.cost is not None and response.cost.amount is not None
        else ""
    )
    error = item.error if item else None
    kind = f'<span class="kind">{e(error.kind)}</span> ' if error else ""
    text = preview(row)
    if error:
        text = text.removeprefix(f"{error.kind}: ")
    return f"""<tr class="state-{e(row.state)}">
  <td class="num">{row.index + 1:,}</td>
  <td><code>{e(row.custom_id)}</code></td>
  <td>{badge(row.state)}</td>
  <td class="answer">{kind}{e(text)}</td>
  <td class="num">{tokens}</td>
  <td class="num">{amount}</td>
</tr>"""


def _page_link(job_id: str, page: ResultsPage, offset: int) -> str:
    query: dict[str, Any] = {"offset": offset, "limit": page.limit}
    if page.state:
        query["state"] = page.state
    return f"/jobs/{e(job_id)}?{e(urlencode(query))}"


def results_html(page: ResultsPage) -> str:
    tabs = []
    for state in (None, *RESULT_STATES):
        query = {"state": state} if state else {}
        href = f"/jobs/{e(page.job_id)}" + (f"?{e(urlencode(query))}" if query else "")
        current = ' aria-current="page"' if state == page.state else ""
        tabs.append(f'<a href="{href}"{current}>{e(state or "all")}</a>')
    first = page.offset + 1 if page.rows else 0
    last = page.offset + len(page.rows)
    pager = []
    for offset, rel, label in (
        (page.previous_offset, "prev", "← Previous"),
        (page.next_offset, "next", "Next →"),
    ):
        if offset is not None:
            href = _page_link(page.job_id, page, offset)
            pager.append(f'<a class="button quiet" rel="{rel}" href="{href}">{label}</a>')
    rows = "".join(_result_row(row) for row in page.rows)
    return f"""<section class="results" id="results" data-offset="{page.offset}"
  data-limit="{page.limit}" data-state="{e(page.state or "")}">
<div class="results-head">
  <h2>Requests</h2>
  <nav class="tabs" aria-label="Show requests">{"".join(tabs)}</nav>
</div>
<div class="table-wrap">
<table class="rows">
  <caption class="visually-hidden">Requests of this job, in request order</caption>
  <thead><tr>{_headings(RESULT_COLUMNS)}</tr></thead>
  <tbody>{rows}</tbody>
</table>
<p class="empty"{"" if not page.rows else " hidden"}>No requests here.</p>
</div>
<nav class="pager" aria-label="Pages">
  <span class="muted" id="range">Rows {first:,}–{last:,} of {page.total:,}</span>
  {" ".join(pager)}
</nav>
</section>"""


def job_details(job: Job) -> str:
    interrupted = f" {badge('interrupted')}" if job.interrupted else ""
    fields = [
        ("Mode", e(job.mode)),
        ("Providers", e(", ".join(job.providers)) or "—"),
        ("Model", e(job.model or "—")),
        ("Provider batches", e(", ".join(job.provider_batches)) or "—"),
        ("Submitted", when(job.submitted_at)),
        ("Updated", when(job.updated_at)),
        ("Finished", when(job.finished_at)),
        ("Cost", cost(job)),
    ]
    if job.error:
        fields.append(("Error", f'<span class="error-text">{e(job.error)}</span>'))
    items = "".join(
        f'<div><dt>{name}</dt><dd data-field="{name.lower()}">{value}</dd></div>'
        for name, value in fields
    )
    return f"""<div id="job-details">
<p class="status-line">{badge(job.status)}{interrupted}</p>
{progress(job)}
<dl class="facts">{items}</dl>
</div>"""


def job_page(*, job: Job, page: ResultsPage, actions: bool, data: Mapping[str, object]) -> str:
    description = f'<p class="description">{e(job.description)}</p>' if job.description else ""
    download = (
        f'<a class="button" id="download" href="/api/jobs/{e(job.job_id)}/results.jsonl" '
        f'download="{e(job.job_id)}.results.jsonl">Download results (JSONL)</a>'
        if job.has_results
        else '<span class="muted" id="download-later">Results can be downloaded once the job '
        "is done.</span>"
    )
    buttons = []
    if actions and job.mode == "batch":
        # Only a provider batch has a provider to ask; an engine job's state is all here.
        buttons.append('<button type="button" data-action="refresh">Refresh from provider</button>')
    if actions:
        disabled = " disabled" if job.done else ""
        buttons.append(
            f'<button type="button" class="danger" data-action="cancel"{disabled}>'
            "Cancel job</button>"
        )
    body = f"""<p class="crumbs"><a href="/">← All jobs</a></p>
<div class="heading"><h1>{e(job.job_id)}</h1></div>
{description}
{job_details(job)}
<div class="actions">{"".join(buttons)}{download}
  <span class="muted" id="action-status" role="status" aria-live="polite"></span></div>
{results_html(page)}"""
    return _layout(job.job_id, body, page="job", data={**data, "job": job.job_id})


def error_page(title: str, message: str, *, data: Mapping[str, object]) -> str:
    body = f"""<p class="crumbs"><a href="/">← All jobs</a></p>
<div class="heading"><h1>{e(title)}</h1></div>
<p class="error-text">{e(message)}</p>"""
    return _layout(title, body, page="error", data=data)


def login_page(*, next_path: str, csrf: str, message: str, data: Mapping[str, object]) -> str:
    note = f'<p class="error-text" role="alert">{e(message)}</p>' if message else ""
    body = f"""<div class="heading"><h1>Log in</h1></div>
<p>This dashboard shows its jobs only to those who have its access token.</p>
{note}
<form class="login" method="post" action="/login">
  <input type="hidden" name="csrf" value="{e(csrf)}">
  <input type="hidden" name="next" value="{e(next_path)}">
  <label for="login-token">Access token</label>
  <input id="login-token" name="token" type="password" autocomplete="current-password" required>
  <button type="submit">Log in</button>
</form>"""
    return _layout("Log in", body, page="login", data=data)
