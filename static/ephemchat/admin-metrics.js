/* ephemchat admin: live cluster metrics. Polls the staff-only JSON every few seconds,
 * fills the totals and the per-gateway table, and draws small line charts. No library. */
(function () {
  "use strict";
  const POLL_MS = 3000;
  const POINTS = 60; // 3 minutes at one point every 3 s
  const root = document.querySelector(".ephem-metrics");
  if (!root) return;
  const history = { messages_per_s: [], connections: [], produce_p99_ms: [], lag: [] };

  function fmt(value, digits) {
    if (value === null || value === undefined || !isFinite(value)) return "–";
    return Number(value).toFixed(digits === undefined ? 0 : digits);
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  function draw(canvas, values) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const numbers = values.filter((v) => v !== null && isFinite(v));
    const max = Math.max(1, ...numbers);
    const style = getComputedStyle(document.body);
    const color = style.getPropertyValue("--link-fg").trim() || "#417690";
    const quiet = style.getPropertyValue("--hairline-color").trim() || "#ddd";
    const x = (i) => w - ((values.length - 1 - i) / (POINTS - 1)) * w; // newest on the right
    const y = (v) => h - 4 - ((v || 0) / max) * (h - 16);
    ctx.strokeStyle = quiet;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, h - 3.5);
    ctx.lineTo(w, h - 3.5);
    ctx.stroke();
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => {
      if (i === 0) ctx.moveTo(x(i), y(v)); else ctx.lineTo(x(i), y(v));
    });
    ctx.stroke();
    if (values.length) {
      ctx.beginPath();
      ctx.arc(x(values.length - 1), y(values[values.length - 1]), 3, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.fillStyle = style.getPropertyValue("--body-quiet-color").trim() || "#666";
    ctx.font = "11px sans-serif";
    ctx.fillText("max " + fmt(max, max < 10 ? 1 : 0), 4, 11);
  }

  function render(data) {
    const totals = data.totals || {};
    const figures = Object.assign({ count: data.count }, totals);
    for (const el of root.querySelectorAll("[data-total]")) {
      const key = el.dataset.total;
      el.textContent = key === "produce_p99_ms" ? fmt(figures[key], 1) + " ms"
        : key.endsWith("_per_s") ? fmt(figures[key], 1) : fmt(figures[key]);
    }
    for (const key of Object.keys(history)) {
      history[key].push(figures[key] === undefined ? null : figures[key]);
      if (history[key].length > POINTS) history[key].shift();
    }
    for (const canvas of root.querySelectorAll("canvas[data-series]")) draw(canvas, history[canvas.dataset.series]);

    const rows = document.getElementById("gateway-rows");
    rows.replaceChildren();
    const now = Date.now();
    for (const [id, g] of Object.entries(data.gateways || {})) {
      const tr = document.createElement("tr");
      const lag = Object.values(g.lag || {}).reduce((a, b) => a + b, 0);
      cell(tr, id);
      cell(tr, fmt(g.connections));
      cell(tr, fmt(Object.keys(g.rooms || {}).length));
      cell(tr, fmt(g.frames_in_per_s, 1));
      cell(tr, fmt(g.frames_out_per_s, 1));
      cell(tr, fmt(g.produce_p99_ms, 1));
      cell(tr, (g.partitions || []).length + (g.partitions && g.partitions.length ? " (" + g.partitions.slice(0, 8).join(", ") + (g.partitions.length > 8 ? ", …" : "") + ")" : ""));
      cell(tr, fmt(lag));
      cell(tr, fmt(g.drops));
      cell(tr, fmt((now - g.ts) / 1000, 0) + " s ago");
      rows.appendChild(tr);
    }
    const roomRows = document.getElementById("room-rows");
    roomRows.replaceChildren();
    const rooms = Object.entries(data.rooms || {}).sort((a, b) => b[1].rate - a[1].rate || b[1].members - a[1].members);
    for (const [room, f] of rooms.slice(0, 20)) {
      const tr = document.createElement("tr");
      cell(tr, room);
      cell(tr, fmt(f.members));
      cell(tr, fmt(f.rate, 2));
      roomRows.appendChild(tr);
    }
    document.getElementById("metrics-status").textContent =
      "Updated " + new Date().toLocaleTimeString() + " · every " + POLL_MS / 1000 + " s";
  }

  function poll() {
    fetch(root.dataset.url, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
      .then(render)
      .catch((err) => {
        document.getElementById("metrics-status").textContent = "Figures unavailable (" + err.message + "); retrying…";
      })
      .finally(() => setTimeout(poll, POLL_MS));
  }
  poll();
})();
