// relay-dashboard: auto-refresh through the JSON API, and the job actions.
// Every value from the workspace goes into the page as textContent, never as markup.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const jobId = body.dataset.job || null;
  const TOKEN_KEY = "relay-dashboard.token";
  const PERIOD_KEY = "relay-dashboard.refresh";
  const GLYPHS = {
    preparing: "…", submitting: "↑", submitted: "◷", running: "▶", completed: "✓",
    failed: "✕", cancelled: "⊘", expired: "⌛", interrupted: "⚠", pending: "…",
    unanswered: "–", unreadable: "?",
  };

  // -- small helpers ------------------------------------------------------------------

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) {
      if (child != null) node.append(child);
    }
    return node;
  }

  function badge(state) {
    return el("span", { class: "badge badge-" + state }, [
      el("span", { "aria-hidden": "true", text: GLYPHS[state] || "•" }),
      " " + state,
    ]);
  }

  function num(n) { return Number(n).toLocaleString("en-US"); }

  function money(amount) {
    // Tiny per-request costs keep their significant digits; totals read as money.
    const digits = amount >= 100 ? 2 : amount > 0 && amount < 0.01 ? 6 : 4;
    return "$" + amount.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function localTime(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      " " + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function when(seconds) {
    if (seconds == null) return el("span", { class: "muted", text: "—" });
    const date = new Date(seconds * 1000);
    return el("time", { datetime: date.toISOString(), title: date.toISOString(), text: localTime(date) });
  }

  // Times arrive in UTC from the server; show them in the reader's time zone.
  function localiseTimes(root) {
    for (const node of root.querySelectorAll("time[datetime]")) {
      const date = new Date(node.getAttribute("datetime"));
      if (!isNaN(date)) {
        node.title = date.toISOString();
        node.textContent = localTime(date);
      }
    }
  }

  function cost(job) {
    if (!job.has_results) return el("span", { class: "muted", title: "known once the results are in", text: "pending" });
    if (job.cost.amount == null) return el("span", { class: "muted", title: "no price source knows this model", text: "unknown" });
    let source = job.cost.source.replace(/_/g, " ");
    if (job.cost.batch_discount_applied) source += " · batch price";
    const out = document.createDocumentFragment();
    out.append(money(job.cost.amount), el("span", { class: "sub", text: source }));
    return out;
  }

  function progress(job) {
    const c = job.counts;
    const total = Math.max(c.total, 1);
    const done = el("span", { class: "done" });
    const failed = el("span", { class: "failed" });
    done.style.width = (100 * c.completed / total).toFixed(2) + "%";
    failed.style.width = (100 * c.failed / total).toFixed(2) + "%";
    return el("div", { class: "progress" }, [
      el("div", { class: "bar", "aria-hidden": "true" }, [done, failed]),
      el("span", { class: "counts", text: num(c.completed) + " done · " + num(c.failed) + " failed · " + num(c.total) + " total" }),
    ]);
  }

  function statusCell(job) {
    const cell = el("td", {}, [badge(job.status)]);
    if (job.interrupted) cell.append(" ", badge("interrupted"));
    return cell;
  }

  // -- the token for actions ----------------------------------------------------------

  // A token given once as ?token= is kept for this tab and taken out of the address bar,
  // so it does not end up in bookmarks, history or a shared link.
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : "") + location.hash);
  }

  function askToken() {
    const form = document.getElementById("token-form");
    const input = document.getElementById("token-input");
    form.hidden = false;
    input.focus();
    return new Promise((resolve) => {
      form.onsubmit = (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value);
        input.value = "";
        form.hidden = true;
        resolve();
      };
    });
  }

  async function act(action) {
    const headers = { "x-relay-dashboard": "1" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.authorization = "Bearer " + token;
    const response = await fetch("/api/jobs/" + encodeURIComponent(jobId) + "/" + action, { method: "POST", headers });
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      await askToken();
      return act(action);
    }
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  // -- refreshing ---------------------------------------------------------------------

  async function getJSON(url) {
    const response = await fetch(url, { headers: { accept: "application/json" } });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function jobRow(job) {
    const link = el("a", { href: "/jobs/" + encodeURIComponent(job.job_id), text: job.job_id });
    const first = el("td", { class: "job" }, [link]);
    if (job.description) first.append(el("span", { class: "sub", text: job.description }));
    const dash = () => el("span", { class: "muted", text: "—" });
    return el("tr", { "data-job": job.job_id }, [
      first,
      statusCell(job),
      el("td", { text: job.mode }),
      el("td", {}, [job.providers.length ? job.providers.join(", ") : dash()]),
      el("td", {}, [job.model || dash()]),
      el("td", {}, [progress(job)]),
      el("td", { class: "num" }, [cost(job)]),
      el("td", {}, [when(job.submitted_at)]),
      el("td", {}, [when(job.finished_at)]),
    ]);
  }

  function renderSummary(summary) {
    const root = document.getElementById("summary");
    const set = (field, value) => { root.querySelector('[data-field="' + field + '"]').textContent = value; };
    set("jobs", num(summary.jobs));
    set("requests", num(summary.requests));
    set("completed", num(summary.completed));
    set("failed", num(summary.failed));
    set("cost", money(summary.cost));
    const chips = root.querySelector('[data-field="by_status"]');
    chips.replaceChildren();
    const entries = Object.entries(summary.by_status);
    if (summary.interrupted) entries.push(["interrupted", summary.interrupted]);
    for (const [status, n] of entries) {
      chips.append(el("li", {}, [badge(status), " ", el("span", { class: "n", text: num(n) })]));
    }
    const notes = [];
    if (summary.cost_pending) notes.push(num(summary.cost_pending) + " without results yet");
    if (summary.cost_unknown) notes.push(num(summary.cost_unknown) + " of unknown cost");
    const note = root.querySelector('[data-field="cost_note"]');
    note.replaceChildren(notes.length ? el("span", { class: "sub", text: "not counted: " + notes.join(", ") }) : "");
  }

  async function refreshJobs() {
    // The page's own query holds the filters, so a refresh shows exactly the same view.
    const query = location.search;
    const [list, summary] = await Promise.all([getJSON("/api/jobs" + query), getJSON("/api/summary" + query)]);
    document.querySelector("#jobs tbody").replaceChildren(...list.jobs.map(jobRow));
    document.getElementById("empty").hidden = list.count > 0;
    document.getElementById("shown").textContent = num(list.count) + " job" + (list.count === 1 ? "" : "s") + " shown";
    renderSummary(summary);
  }

  function resultRow(item) {
    const answer = el("td", { class: "answer" });
    if (item.error) answer.append(el("span", { class: "kind", text: item.error.kind }), " ", item.error.message);
    else answer.textContent = item.preview;
    const tokens = item.input_tokens == null ? "" : num(item.input_tokens) + " → " + num(item.output_tokens);
    const amount = item.cost == null ? "" : money(item.cost);
    return el("tr", { class: "state-" + item.state }, [
      el("td", { class: "num", text: num(item.index + 1) }),
      el("td", {}, [el("code", { text: item.custom_id })]),
      el("td", {}, [badge(item.state)]),
      answer,
      el("td", { class: "num", text: tokens }),
      el("td", { class: "num", text: amount }),
    ]);
  }

  function renderJob(job) {
    const details = document.getElementById("job-details");
    const line = details.querySelector(".status-line");
    line.replaceChildren(badge(job.status));
    if (job.interrupted) line.append(" ", badge("interrupted"));
    details.querySelector(".progress").replaceWith(progress(job));
    for (const [field, node] of [["updated", when(job.updated_at)], ["finished", when(job.finished_at)], ["cost", cost(job)]]) {
      const cell = details.querySelector('[data-field="' + field + '"]');
      if (cell) cell.replaceChildren(node);
    }
    const cancel = document.querySelector('[data-action="cancel"]');
    if (cancel) cancel.disabled = job.done;
    const later = document.getElementById("download-later");
    if (later && job.has_results) {
      later.replaceWith(el("a", {
        class: "button", id: "download", download: job.job_id + ".results.jsonl",
        href: "/api/jobs/" + encodeURIComponent(job.job_id) + "/results.jsonl", text: "Download results (JSONL)",
      }));
    }
  }

  async function refreshJob() {
    const section = document.getElementById("results");
    const query = new URLSearchParams({ offset: section.dataset.offset, limit: section.dataset.limit });
    if (section.dataset.state) query.set("state", section.dataset.state);
    const base = "/api/jobs/" + encodeURIComponent(jobId);
    const [job, results] = await Promise.all([getJSON(base), getJSON(base + "/results?" + query)]);
    renderJob(job);
    section.querySelector("tbody").replaceChildren(...results.items.map(resultRow));
    const first = results.items.length ? results.offset + 1 : 0;
    document.getElementById("range").textContent =
      "Rows " + num(first) + "–" + num(results.offset + results.items.length) + " of " + num(results.total);
  }

  const refreshers = { jobs: refreshJobs, job: refreshJob };
  const refreshNow = refreshers[page];
  localiseTimes(document);
  if (!refreshNow) return;

  // -- the auto-refresh controls ------------------------------------------------------

  const controls = document.getElementById("refresh-controls");
  const every = document.getElementById("refresh-every");
  const pause = document.getElementById("refresh-pause");
  const status = document.getElementById("refresh-status");
  const initial = Number(localStorage.getItem(PERIOD_KEY) || body.dataset.refresh || 30);
  let paused = initial === 0;
  let timer = null;
  if (!paused && ![...every.options].some((o) => Number(o.value) === initial)) {
    every.append(el("option", { value: String(initial), text: "every " + initial + " s" }));
  }
  if (!paused) every.value = String(initial);
  controls.hidden = false;

  function schedule() {
    clearTimeout(timer);
    timer = paused ? null : setTimeout(tick, Number(every.value) * 1000);
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (paused) status.textContent = "Paused";
  }

  async function tick() {
    try {
      await refreshNow();
      status.textContent = "Updated " + new Date().toLocaleTimeString();
    } catch (error) {
      status.textContent = "Refresh failed: " + error.message;
    }
    schedule();
  }

  every.addEventListener("change", () => {
    localStorage.setItem(PERIOD_KEY, every.value);
    paused = false;
    schedule();
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    if (paused) schedule();
    else tick();
  });
  schedule();

  // -- actions ------------------------------------------------------------------------

  const actionStatus = document.getElementById("action-status");
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      if (action === "cancel" && !confirm("Cancel job " + jobId + "? Answered requests keep their results.")) return;
      button.disabled = true;
      actionStatus.textContent = action === "cancel" ? "Cancelling…" : "Refreshing…";
      try {
        const job = await act(action);
        button.disabled = false;
        actionStatus.textContent = action === "cancel" ? "Job is " + job.status + "." : "Refreshed: job is " + job.status + ".";
        await refreshNow(); // disables Cancel again once the job is done
      } catch (error) {
        button.disabled = false;
        actionStatus.textContent = "Failed: " + error.message;
      }
    });
  }
})();
