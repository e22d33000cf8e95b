// The board's live updates: the server sends its parts (rows, room, nodes, clock requests)
// over Server-Sent Events whenever they change; this swaps them in and applies the viewer's
// filters to the rows. Without this script the page still works: reload to see changes.
"use strict";
(function () {
  const rows = document.getElementById("island-rows");
  if (!rows || !window.EventSource) return;
  const form = document.getElementById("filters");
  const live = document.getElementById("live");
  const noMatch = document.getElementById("no-match");
  const viewer = document.body.dataset.viewer;
  const parts = ["room", "island_rows", "nodes", "clocks"];
  const target = { room: "room", island_rows: "island-rows", nodes: "nodes", clocks: "clocks" };

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

  function showLive(on) {
    live.hidden = false;
    live.textContent = on ? live.dataset.live : live.dataset.offline;
    live.classList.toggle("offline", !on);
  }

  form.addEventListener("change", function () {
    applyFilters();
    const query = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) query.set(key, value);
    const text = query.toString();
    history.replaceState(null, "", text ? "/board?" + text : "/board");
  });

  const events = new EventSource("/board/events");
  events.addEventListener("open", function () { showLive(true); });
  events.addEventListener("error", function () { showLive(false); });
  events.addEventListener("board", function (event) {
    const data = JSON.parse(event.data);
    for (const part of parts) {
      const element = document.getElementById(target[part]);
      if (element && typeof data[part] === "string") element.innerHTML = data[part];
    }
    applyFilters();
    showLive(true);
  });
})();
