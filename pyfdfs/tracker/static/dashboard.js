// pyfdfs tracker dashboard: polls /status.json (schema pyfdfs.cluster-status/1) every 2 s.
"use strict";

const REFRESH_MS = 2000;
let previous = new Map();  // "group/id" -> {total, failed} of the last refresh
let lastOk = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function space(mb) {
  if (mb >= 1024 * 1024) return (mb / 1024 / 1024).toFixed(2) + " TiB";
  if (mb >= 1024) return (mb / 1024).toFixed(1) + " GiB";
  return mb + " MiB";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return seconds + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor(seconds % 3600 / 60) + " min";
  return Math.floor(seconds / 86400) + " d " + Math.floor(seconds % 86400 / 3600) + " h";
}

function freeCell(s) {
  if (!s.total_mb) return el("td", {class: "muted"}, "–");
  const ratio = s.free_mb / s.total_mb;
  const level = ratio < 0.05 ? "critical" : ratio < 0.15 ? "low" : "";
  const bar = el("span", {class: "bar " + level}, el("span", {style: `width:${(100 * ratio).toFixed(1)}%`}));
  return el("td", {class: "num"}, bar, `${space(s.free_mb)} of ${space(s.total_mb)} (${(100 * ratio).toFixed(0)}%)`);
}

function lagCell(lag) {
  const cls = lag === null ? "muted" : lag > 300 ? "bad" : lag > 30 ? "warn" : "good";
  return el("td", {class: "num " + cls}, duration(lag));
}

function errorCell(key, s) {
  const before = previous.get(key);
  const cumulative = `(${s.requests_failed}/${s.requests_total})`;
  if (!before) return el("td", {class: "num muted"}, "– " + cumulative);
  const total = s.requests_total - before.total, failed = s.requests_failed - before.failed;
  if (total <= 0) return el("td", {class: "num muted"}, "idle " + cumulative);
  const pct = 100 * failed / total;
  const cls = pct >= 5 ? "bad" : pct > 0 ? "warn" : "good";
  return el("td", {class: "num " + cls}, `${pct.toFixed(1)}% of ${total} `, el("span", {class: "muted"}, cumulative));
}

function storageRow(group, s, now) {
  const key = group.name + "/" + s.id;
  const beat = s.last_heart_beat_time ? duration(Math.max(0, now - s.last_heart_beat_time)) + " ago" : "never";
  const row = el("tr", {"data-storage": key, "data-status": s.status, class: s.status === "OFFLINE" ? "down" : ""},
    el("td", {}, el("strong", {}, s.id), s.id !== s.ip_addr ? el("span", {class: "muted"}, " " + s.ip_addr) : ""),
    el("td", {class: "num"}, s.port),
    el("td", {class: "state"}, el("span", {class: "badge state-" + s.status}, s.status)),
    freeCell(s),
    lagCell(s.sync_lag_seconds),
    el("td", {class: "num"}, beat),
    errorCell(key, s),
    el("td", {class: "num"}, s.connections),
    el("td", {class: "muted"}, s.version || "–"));
  return row;
}

function groupCard(group, now) {
  const head = el("h2", {}, group.name,
    el("span", {class: "meta"}, `${group.active_count}/${group.storage_count} active · ` +
       `free ${space(group.free_mb)} of ${space(group.total_mb)} · port ${group.storage_port}`));
  const header = el("tr", {}, ...["Storage", "Port", "State", "Free space", "Sync lag", "Heartbeat",
                                  "Errors", "Conns", "Version"].map(t => el("th", {}, t)));
  const body = el("tbody", {}, ...group.storages.map(s => storageRow(group, s, now)));
  return el("section", {class: "group", "data-group": group.name}, head, el("table", {}, el("thead", {}, header), body));
}

function tile(value, label, cls) {
  return el("div", {class: "tile"}, el("div", {class: "value " + (cls || "")}, value), el("div", {class: "label"}, label));
}

function render(doc) {
  const t = doc.tracker;
  document.getElementById("tracker").textContent =
    `tracker ${t.address}` + (t.is_leader ? " · leader" : t.is_leader === false ? " · follower" : "");
  const storages = doc.groups.flatMap(g => g.storages);
  const active = storages.filter(s => s.status === "ACTIVE").length;
  const offline = storages.filter(s => s.status === "OFFLINE").length;
  const lags = storages.map(s => s.sync_lag_seconds).filter(l => l !== null);
  const maxLag = lags.length ? Math.max(...lags) : null;
  const trackerErrors = t.requests_last_minute ? `${t.errors_last_minute}/${t.requests_last_minute}` : "0";
  document.getElementById("summary").replaceChildren(
    tile(doc.groups.length, "groups"),
    tile(`${active}/${storages.length}`, "storages active", active === storages.length ? "good" : "warn"),
    tile(offline, "offline", offline ? "bad" : "good"),
    tile(space(doc.groups.reduce((sum, g) => sum + g.free_mb, 0)), "free space (writable)"),
    tile(duration(maxLag), "max sync lag", maxLag === null ? "muted" : maxLag > 30 ? "warn" : "good"),
    tile(trackerErrors, "tracker errors / requests, 1 min", t.errors_last_minute ? "warn" : ""));
  const groups = document.getElementById("groups");
  if (!doc.groups.length) {
    groups.replaceChildren(el("div", {class: "group empty"}, "No groups yet: no storage has joined this tracker."));
  } else {
    groups.replaceChildren(...doc.groups.map(g => groupCard(g, doc.generated_at)));
  }
  previous = new Map(doc.groups.flatMap(g => g.storages.map(
    s => [g.name + "/" + s.id, {total: s.requests_total, failed: s.requests_failed}])));
}

async function refresh() {
  const status = document.getElementById("refresh");
  try {
    const response = await fetch("/status.json", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    lastOk = Date.now();
    status.className = "refresh";
    status.textContent = "updated " + new Date(lastOk).toLocaleTimeString();
  } catch (err) {
    status.className = "refresh stale";
    status.textContent = "tracker unreachable (" + err.message + ")" +
      (lastOk ? ", data from " + new Date(lastOk).toLocaleTimeString() : "");
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
