// The board's live updates. The server sends, over Server-Sent Events, the whole board when
// the page connects and then what changed: parts (room, nodes, clock requests) whole, the
// island rows that changed, and the rows' order when islands came or went. This puts them in
// place and applies the viewer's filters to the rows. Without this script the page still
// works: reload it to see changes.
"use strict";
(function () {
  const rows = document.getElementById("island-rows");
  if (!rows || !window.EventSource) return;
  const form = document.getElementById("filters");
  const live = document.getElementById("live");
  const noMatch = document.getElementById("no-match");
  const viewer = document.body.dataset.viewer;

  function filters() {
    const data = new FormData(form);
    return { mine: data.get("mine"), branch: data.get("branch"), state: data.get("state") };
  }

  function applyFilters() {
    const f = filters();
    let shown = 0, total = 0;
    for (const row of rows.querySelectorAll("tr[data-state]")) {
      total += 1;
      const keep = (!f.mine || row.dataset.owner === viewer)
        && (!f.branch || row.dataset.branch === f.branch)
        && (!f.state || row.dataset.state === f.state);
      row.hidden = !keep;
      if (keep) shown += 1;
    }
    noMatch.hidden = shown > 0 || total === 0;
  }

  function say(what) {
    live.hidden = false;
    live.textContent = live.dataset[what];
    live.classList.toggle("offline", what !== "live");
  }

  function rowOf(html) {
    const holder = document.createElement("template");
    holder.innerHTML = html;  // the server's HTML, every value in it escaped
    return holder.content.firstElementChild;
  }

  function update(data) {
    for (const [id, html] of Object.entries(data.parts || {})) {
      const element = document.getElementById(id);
      if (element) element.innerHTML = html;
    }
    for (const [id, html] of data.rows || []) {
      const fresh = rowOf(html);
      const old = document.getElementById("island-" + id);
      if (old) old.replaceWith(fresh); else rows.appendChild(fresh);
    }
    if (data.order) {
      const wanted = new Set(data.order.map(function (id) { return "island-" + id; }));
      for (const row of Array.from(rows.children)) if (!wanted.has(row.id)) row.remove();
      for (const id of data.order) rows.appendChild(document.getElementById("island-" + id));
      if (!data.order.length) {
        const empty = document.createElement("tr");
        const cell = document.createElement("td");
        empty.className = "empty";
        cell.colSpan = 11;
        cell.textContent = rows.dataset.empty;
        empty.appendChild(cell);
        rows.appendChild(empty);
      }
    }
    applyFilters();
  }

  form.addEventListener("change", function () {
    applyFilters();
    const query = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) query.set(key, value);
    const text = query.toString();
    history.replaceState(null, "", text ? "/board?" + text : "/board");
  });

  const events = new EventSource("/board/events");
  events.addEventListener("open", function () { say("live"); });
  events.addEventListener("error", function () { say("offline"); });
  events.addEventListener("stale", function () { say("offline"); });
  events.addEventListener("busy", function () { say("busy"); });
  events.addEventListener("expired", function () { events.close(); say("expired"); });
  events.addEventListener("board", function (event) {
    update(JSON.parse(event.data));
    say("live");
  });
})();
