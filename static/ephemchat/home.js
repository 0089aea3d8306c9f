/* ephemchat: live figures on the room browser. Plain script, no build step.
 *
 * Reads the cluster stats endpoint ({"rooms": {"<room>": {"members": n, "rate": msgs_per_s}},
 * "gateways": n}) every few seconds and fills each row's [data-stat] cells. Until the
 * endpoint exists, or while it fails, the cells show "–".
 */
(function () {
  "use strict";

  const POLL_MS = 5000;
  const GIVE_UP_AFTER_404 = true; // a missing endpoint will not appear while the page is open
  const DASH = "–";

  /** msgs/s -> msgs/min, rounded for reading at a glance: 0, 0.5, 3, 42. */
  function formatRate(perSecond) {
    if (typeof perSecond !== "number" || !isFinite(perSecond) || perSecond < 0) return DASH;
    const perMinute = perSecond * 60;
    if (perMinute === 0) return "0";
    if (perMinute < 1) return perMinute.toFixed(1);
    return String(Math.round(perMinute));
  }

  function formatCount(value) {
    return typeof value === "number" && isFinite(value) && value >= 0 ? String(Math.round(value)) : DASH;
  }

  window.EphemHome = { formatRate: formatRate, formatCount: formatCount };

  const list = document.getElementById("room-list");
  const clusterLine = document.getElementById("cluster-line");
  if (!list) return;
  const url = list.dataset.statsUrl;

  function fillRows(stats) {
    const rooms = stats && typeof stats.rooms === "object" && stats.rooms !== null ? stats.rooms : null;
    for (const row of list.querySelectorAll("[data-room]")) {
      const figures = rooms ? rooms[row.dataset.room] || { members: 0, rate: 0 } : null;
      row.querySelector('[data-stat="members"]').textContent = figures ? formatCount(figures.members) : DASH;
      row.querySelector('[data-stat="rate"]').textContent = figures ? formatRate(figures.rate) : DASH;
    }
    if (clusterLine) {
      const gateways = stats && typeof stats.gateways === "number" ? stats.gateways : null;
      clusterLine.textContent =
        gateways === null ? "" : gateways + " gateway" + (gateways === 1 ? "" : "s") + " online";
    }
  }

  let timer = null;
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then((response) => {
        if (response.status === 404 && GIVE_UP_AFTER_404) {
          fillRows(null);
          return "stop";
        }
        return response.ok ? response.json() : null;
      })
      .then((stats) => {
        if (stats === "stop") return;
        fillRows(stats);
        timer = setTimeout(poll, POLL_MS);
      })
      .catch(() => {
        fillRows(null);
        timer = setTimeout(poll, POLL_MS);
      });
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else if (timer === null) {
      poll();
    }
  });
  poll();
})();
