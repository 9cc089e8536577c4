// The status page: polls /api/status (the jobs list) or /api/jobs/<id> (a job's page) every
// second and redraws, without reloading. Plain JavaScript, no libraries, no build step.
"use strict";

const POLL_MS = 1000;
const TASKS_SHOWN = 400;
const token = new URLSearchParams(location.search).get("token");
const opened = new Set(); // <details> the reader opened: kept open across redraws
let filter = "all";

function withToken(path) {
  return token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path;
}

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  }[c]));
}

function seconds(s) {
  if (s === null || s === undefined || isNaN(s)) return "–";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
}

function clock(t) {
  return t ? new Date(t * 1000).toLocaleString() : "–";
}

function number(n) {
  return (n ?? 0).toLocaleString();
}

function badge(state) {
  return `<span class="badge s-${esc(state)}">${esc(state)}</span>`;
}

function bar(done, total, running) {
  const pct = total ? Math.round((100 * done) / total) : 0;
  return `<div class="progress"><div class="bar${running ? " running" : ""}" role="progressbar"
    aria-valuenow="${done}" aria-valuemax="${total}"><span style="width:${pct}%"></span></div>
    <small class="muted">${done}/${total}</small></div>`;
}

function userCounters(counters) {
  const out = [];
  for (const [group, names] of Object.entries((counters || {}).user || {})) {
    for (const [name, value] of Object.entries(names)) out.push(`${group}.${name}=${number(value)}`);
  }
  return out.map(esc).join("<br>");
}

async function getJSON(path) {
  const response = await fetch(withToken(path), { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// ---- the jobs list -------------------------------------------------------------------------

function jobsTable(jobs) {
  if (!jobs.length) return `<p class="muted card">No jobs yet.</p>`;
  const rows = jobs.slice().reverse().map((job) => {
    const p = job.progress || {};
    const c = job.counters || {};
    const live = job.status === "running" || job.status === "queued";
    return `<tr data-job="${esc(job.job)}">
      <td><a href="${esc(withToken("/jobs/" + encodeURIComponent(job.job)))}">${esc(job.job)}</a></td>
      <td>${esc(job.name)}</td>
      <td>${badge(job.status)}</td>
      <td class="map">${bar(p.maps_done || 0, p.maps || 0, live)}</td>
      <td class="reduce">${p.reduces ? bar(p.reduces_done || 0, p.reduces, live) : '<span class="muted">map-only</span>'}</td>
      <td class="num">${seconds(p.elapsed)}</td>
      <td class="num wide">${number(c.map_input_records)} / ${number(c.output_records)}</td>
      <td class="wide"><small>${userCounters(c)}</small></td>
    </tr>`;
  });
  return `<div class="scroll"><table id="jobs">
    <thead><tr><th>Job</th><th>Name</th><th>State</th><th>Map</th><th>Reduce</th><th>Elapsed</th>
    <th class="wide">Records in / out</th><th class="wide">Counters</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table></div>`;
}

function workersTable(workers) {
  if (!workers.length) return `<p class="muted card">No workers connected.</p>`;
  const rows = workers.map((w) => `<tr>
      <td><code>${esc(w.id)}</code></td>
      <td>${esc(w.host)}</td>
      <td class="num wide">${esc(w.pid)}</td>
      <td class="num">${w.running}/${w.capacity}</td>
      <td class="num wide">${number(w.tasks_done)}</td>
      <td class="num">${seconds(w.last_heartbeat_s)} ago</td>
      <td class="wide"><small>${(w.attempts || []).map(([job, task, n]) =>
        `${esc(task)} #${n} <span class="muted">${esc(job)}</span>`).join("<br>")}</small></td>
    </tr>`);
  return `<div class="scroll"><table id="workers">
    <thead><tr><th>Worker</th><th>Host</th><th class="wide">PID</th><th>Slots busy</th>
    <th class="wide">Tasks done</th><th>Last heartbeat</th><th class="wide">Running</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table></div>`;
}

function renderStatus(status) {
  document.title = "mapreduce: jobs";
  return `<h1>Jobs</h1>${jobsTable(status.jobs || [])}
    <h2>Workers (${(status.workers || []).length})</h2>${workersTable(status.workers || [])}`;
}

// ---- a job's page --------------------------------------------------------------------------

const COLOURS = {
  succeeded: "#1f9d55", running: "#2b6cb0", failed: "#c53030", lost: "#b7791f", killed: "#a0aec0",
};

function timeline(tasks, now) {
  const attempts = [];
  for (const task of tasks) {
    for (const a of task.attempts) {
      if (a.started_at) attempts.push({ ...a, task: task.task });
    }
  }
  if (!attempts.length) return `<p class="muted">No attempts yet.</p>`;
  const workers = [...new Set(attempts.map((a) => a.worker))].sort();
  const start = Math.min(...attempts.map((a) => a.started_at));
  const end = Math.max(now, ...attempts.map((a) => a.ended_at || now));
  const span = Math.max(end - start, 0.001);
  const label = 150, width = 1000, row = 22;
  const x = (t) => label + ((t - start) / span) * (width - label - 10);
  const boxes = attempts.map((a) => {
    const y = workers.indexOf(a.worker) * row + 4;
    const x0 = x(a.started_at);
    const w = Math.max(x(a.ended_at || now) - x0, 2);
    const title = `${a.task} attempt ${a.attempt}: ${a.state}${a.backup ? " (backup)" : ""}, ` +
      `${seconds(a.duration)}${a.error ? ": " + a.error : ""}`;
    return `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${row - 8}" rx="2"
      fill="${COLOURS[a.state] || "#718096"}" ${a.backup ? 'stroke="#000" stroke-dasharray="3 2"' : ""}>
      <title>${esc(title)}</title></rect>`;
  });
  const names = workers.map((w, i) =>
    `<text x="4" y="${i * row + 16}">${esc(String(w).slice(0, 22))}</text>`);
  const height = workers.length * row + 18;
  const axis = `<text x="${label}" y="${height - 3}">0 s</text>
    <text x="${width - 10}" y="${height - 3}" text-anchor="end">${esc(seconds(span))}</text>`;
  const legend = Object.entries(COLOURS).map(([state, colour]) =>
    `<span><i style="background:${colour}"></i>${state}</span>`).join("") +
    `<span><i style="border:1px dashed #000"></i>backup</span>`;
  return `<div class="legend">${legend}</div>
    <svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img"
      aria-label="attempts per worker over time" style="height:${height}px">${names.join("")}${boxes.join("")}${axis}</svg>`;
}

function attemptLine(jobId, task, a) {
  const id = `log-${task.task}-${a.attempt}`;
  const flags = (a.backup ? '<span class="flag">backup</span>' : "") +
    (a.lost ? '<span class="flag">lost</span>' : "");
  const error = a.error ? `<div><small>${esc(a.error)}</small></div>` : "";
  const tail = a.log_tail ? `<details data-id="${esc(id)}"${opened.has(id) ? " open" : ""}>
      <summary>log tail</summary><pre>${esc(a.log_tail)}</pre></details>` : "";
  return `<div class="attempt">#${a.attempt} ${badge(a.state)}${flags}
    <span class="muted">${a.worker ? "on <code>" + esc(a.worker) + "</code>" : "before a restart"}
    ${a.duration !== null ? seconds(a.duration) : ""}</span>${error}${tail}</div>`;
}

function tasksTable(job) {
  let tasks = job.tasks || [];
  const total = tasks.length;
  if (filter === "unfinished") tasks = tasks.filter((t) => t.state !== "succeeded");
  if (filter === "troubled") tasks = tasks.filter((t) => t.attempts.some((a) => a.state === "failed" || a.lost || a.backup));
  const shown = tasks.slice(0, TASKS_SHOWN);
  const rows = shown.map((t) => `<tr>
      <td><code>${esc(t.task)}</code><div class="wide"><small class="muted">${esc(t.where)}</small></div></td>
      <td>${badge(t.state)}</td>
      <td>${t.attempts.map((a) => attemptLine(job.job, t, a)).join("")}</td></tr>`);
  const choose = ["all", "unfinished", "troubled"].map((f) =>
    `<option value="${f}"${f === filter ? " selected" : ""}>${f === "troubled" ? "failed, lost or backup" : f}</option>`).join("");
  return `<p><label>Show <select id="filter">${choose}</select></label>
    <span class="muted">${shown.length} of ${total} tasks</span></p>
    <div class="scroll"><table id="tasks"><thead><tr><th>Task</th><th>State</th><th>Attempts</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table></div>`;
}

function partitions(sizes) {
  if (!sizes || !sizes.length) return "";
  const most = Math.max(...sizes, 1);
  return `<h2>Partitions (shuffled records)</h2><div class="card">${sizes.map((n, i) =>
    `<div class="partition"><code>${i}</code><div class="bar"><span style="width:${(100 * n / most).toFixed(1)}%"></span></div>
     <small class="num">${number(n)}</small></div>`).join("")}</div>`;
}

function renderJob(job) {
  const p = job.progress || {};
  const c = job.counters || {};
  const live = job.status === "running" || job.status === "queued";
  document.title = `mapreduce: ${job.name} ${job.status}`;
  const error = job.error ? `<h2>Error</h2><pre id="error">${esc(job.error)}</pre>` : "";
  const tasks = job.tasks ? `<h2>Timeline (attempts per worker)</h2><div class="card timeline">${timeline(job.tasks, job.time)}</div>
      ${partitions(job.partitions)}<h2>Tasks</h2>${tasksTable(job)}`
    : `<p class="muted card">${live ? "Loading the tasks…" : "This job's tasks are not kept (it ended before the coordinator restarted)."}</p>`;
  return `<h1>${esc(job.name)} ${badge(job.status)}</h1>
    <div class="card facts" id="facts">
      <div><span>Job</span><code>${esc(job.job)}</code></div>
      <div><span>Started</span>${clock(job.submitted_at)}</div>
      <div><span>Ended</span>${clock(job.finished_at)}</div>
      <div><span>Elapsed</span>${seconds(p.elapsed)}</div>
      <div><span>Output</span><code>${esc(job.output)}</code></div>
      <div><span>Map</span>${bar(p.maps_done || 0, p.maps || 0, live)}</div>
      <div><span>Reduce</span>${p.reduces ? bar(p.reduces_done || 0, p.reduces, live) : "map-only"}</div>
      <div><span>Attempts</span>${number(p.attempts)} (failed ${number(p.failed)}, lost ${number(p.lost)}, backups ${number(p.backups)})</div>
      <div><span>Records in / mapped / out</span>${number(c.map_input_records)} / ${number(c.map_output_records)} / ${number(c.output_records)}</div>
      <div><span>Counters</span><small>${userCounters(c) || "–"}</small></div>
    </div>${error}${tasks}`;
}

// ---- polling -------------------------------------------------------------------------------

const jobMatch = location.pathname.match(/^\/jobs\/([^/]+)/);
const jobId = jobMatch ? decodeURIComponent(jobMatch[1]) : null;
document.getElementById("home").href = withToken("/");

async function refresh() {
  const main = document.getElementById("main");
  const updated = document.getElementById("updated");
  try {
    const data = await getJSON(jobId ? "/api/jobs/" + encodeURIComponent(jobId) : "/api/status");
    main.innerHTML = jobId ? renderJob(data) : renderStatus(data);
    updated.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    updated.textContent = "not updated: " + error.message;
  }
}

document.addEventListener("toggle", (event) => {
  const id = event.target.dataset && event.target.dataset.id;
  if (id) event.target.open ? opened.add(id) : opened.delete(id);
}, true);
document.addEventListener("change", (event) => {
  if (event.target.id === "filter") { filter = event.target.value; refresh(); }
});

refresh();
setInterval(refresh, POLL_MS);
