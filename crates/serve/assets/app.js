// mesalab serve: the only script. It swaps in server-rendered fragments while runs are live
// (server-sent events on a run page, polling on the runs table and comparisons) and builds the
// comparison URL from the ticked runs. Pages carry no inline script; everything is read from
// data- attributes.
"use strict";

const picked = new Set();

function refreshPicks() {
  document.querySelectorAll("input.pick").forEach((box) => { box.checked = picked.has(box.value); });
  const button = document.getElementById("compare-selected");
  if (button) button.disabled = picked.size < 2;
}

document.addEventListener("change", (e) => {
  const t = e.target;
  if (t.classList && t.classList.contains("pick")) {
    if (t.checked) picked.add(t.value); else picked.delete(t.value);
    refreshPicks();
  } else if (t.id === "only-diff") {
    document.body.classList.toggle("only-diff", t.checked);
  }
});

document.addEventListener("click", (e) => {
  if (e.target.id === "compare-selected" && picked.size >= 2) {
    window.location.href = "/compare?runs=" + Array.from(picked).join(",");
  }
});

async function swap(live) {
  const response = await fetch(live.dataset.fragment, { cache: "no-store" });
  if (!response.ok) return false;
  const html = await response.text();
  live.innerHTML = html;
  refreshPicks();
  const onlyDiff = document.getElementById("only-diff");
  if (onlyDiff) onlyDiff.checked = document.body.classList.contains("only-diff");
  live.dispatchEvent(new CustomEvent("swapped", { bubbles: true }));
  return true;
}

// Something is still running inside `live` (a run row, a compared run).
function isLive(live) {
  return live.querySelector('[data-running]:not([data-running="0"])') !== null;
}

function poll(live) {
  const tick = async () => {
    try { await swap(live); } catch (_) { /* server restarting: try again later */ }
    setTimeout(tick, isLive(live) ? 2000 : 10000);
  };
  setTimeout(tick, isLive(live) ? 2000 : 10000);
}

function follow(live) {
  const status = live.querySelector("#run-live");
  if (status && status.dataset.status !== "running") return;
  const events = new EventSource(live.dataset.events);
  let busy = false, again = false;
  const update = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try { await swap(live); } finally { busy = false; }
    if (again) { again = false; update(); }
  };
  events.addEventListener("progress", update);
  events.addEventListener("end", () => { events.close(); update(); });
  events.addEventListener("error", () => { /* EventSource reconnects by itself */ });
}

document.querySelectorAll(".live").forEach((live) => {
  if (live.dataset.events) follow(live); else if (live.dataset.fragment) poll(live);
});
refreshPicks();
