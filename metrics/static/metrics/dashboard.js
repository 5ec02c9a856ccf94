// The metrics dashboard: history charts (uPlot) from /api/metrics/history/, live figures over a WebSocket.
(function () {
  "use strict";
  const root = document.getElementById("metrics-dashboard");
  if (!root) return;
  const charts = JSON.parse(document.getElementById("metrics-charts").textContent);
  const route = root.dataset.route;
  const historyUrl = root.dataset.historyUrl;
  const STEPS = { "10s": 10, "1m": 60, "5m": 300, "1h": 3600, "1d": 86400 };
  const COLOURS = ["#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd"];
  const COUNTS = new Set(["rate", "errors_4xx", "errors_5xx", "errors_gateway", "bytes_in", "bytes_out", "count"]);
  const plots = {};
  window.rustaCharts = plots;
  const liveData = [[], []];

  const rangePicker = document.getElementById("range");
  const intervalPicker = document.getElementById("interval");
  const routePicker = document.getElementById("route-picker");
  routePicker.addEventListener("change", () => {
    window.location.href = routePicker.value ? `/admin/metrics/dashboard/route/${encodeURIComponent(routePicker.value)}/`
                                             : "/admin/metrics/dashboard/";
  });

  function chooseInterval(seconds) {
    if (intervalPicker.value !== "auto") return intervalPicker.value;
    for (const [name, step] of Object.entries(STEPS)) {
      if (seconds / step <= 400) return name;
    }
    return "1d";
  }

  function formatValue(unit, value) {
    if (value == null) return "–";
    if (unit === "s") return (value * 1000).toFixed(1) + " ms";
    if (unit === "ratio") return (value * 100).toFixed(1) + "%";
    if (unit === "bytes") return value >= 1048576 ? (value / 1048576).toFixed(1) + " MiB" : value.toFixed(0) + " B";
    return Number.isInteger(value) ? String(value) : value.toFixed(2);
  }

  function drawChart(spec, data) {
    const figure = document.getElementById("chart-" + spec.id);
    const holder = figure.querySelector(".plot");
    if (typeof uPlot === "undefined") return;
    const hasData = data[0].length > 0 && data.slice(1).some((series) => series.some((v) => v != null && v !== 0));
    figure.querySelector(".empty").hidden = hasData || spec.live;
    const options = {
      width: Math.max(320, holder.clientWidth || 560), height: 220,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : (spec.unit === "ratio" ? 0.01 : 1)] } },
      series: [{}].concat(spec.fields.map((field, i) => ({
        label: field, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: false,
        points: { show: !COUNTS.has(field), size: 5 },  // latency and ratios have gaps: lone points must show
        value: (u, v) => formatValue(spec.unit, v),
      }))),
      axes: [{}, { values: (u, ticks) => ticks.map((v) => formatValue(spec.unit, v)), size: 70 }],
      hooks: { setSelect: [(u) => zoomAll(u)] },
    };
    if (plots[spec.id]) plots[spec.id].destroy();
    plots[spec.id] = new uPlot(options, data, holder);
  }

  function zoomAll(source) {
    if (source.select.width <= 0) return;
    const min = source.posToVal(source.select.left, "x");
    const max = source.posToVal(source.select.left + source.select.width, "x");
    for (const plot of Object.values(plots)) {
      if (plot !== plots.live) plot.setScale("x", { min, max });
    }
    source.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
  }

  async function loadHistory() {
    const span = Number(rangePicker.value);
    const end = Math.ceil(Date.now() / 1000);
    const interval = chooseInterval(span);
    const step = STEPS[interval];
    const start = Math.floor((end - span) / step) * step;
    const byName = {};
    for (const spec of charts) {
      if (spec.live || byName[spec.name]) continue;
      const query = new URLSearchParams({ name: spec.name, interval, start: String(start), end: String(end) });
      if (route) query.set("route", route);
      byName[spec.name] = fetch(`${historyUrl}?${query}`, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : { points: [] }));
    }
    for (const spec of charts) {
      if (spec.live) { drawChart(spec, liveData); continue; }
      const body = await byName[spec.name];
      const points = new Map(body.points.map((p) => [Math.floor(Date.parse(p.t) / 1000), p]));
      const xs = [];
      const ys = spec.fields.map(() => []);
      for (let t = start; t < end; t += step) {
        xs.push(t);
        const point = points.get(t);
        spec.fields.forEach((field, i) => {
          const value = point ? point[field] : null;
          ys[i].push(value == null && COUNTS.has(field) ? 0 : value);
        });
      }
      drawChart(spec, [xs].concat(ys));
    }
    root.dataset.loaded = String(Date.now());
  }

  rangePicker.addEventListener("change", loadHistory);
  intervalPicker.addEventListener("change", loadHistory);
  document.getElementById("reset-zoom").addEventListener("click", loadHistory);
  loadHistory();
  setInterval(loadHistory, 30000); // coarse refresh of the history; live figures come over the socket

  // --- Live figures over the WebSocket, reconnecting with backoff (a gateway restart drops it) ----------
  const status = document.getElementById("live-status");
  let backoff = 500;

  function show(figures) {
    for (const key of ["requests_total", "requests_per_second", "errors_per_second", "connections_active",
                       "connections_peak", "workers"]) {
      const element = document.getElementById("live-" + key);
      if (element && figures[key] != null) element.textContent = String(figures[key]);
    }
    document.getElementById("live-p95").textContent = formatValue("s", figures.p95_seconds);
    liveData[0].push(Math.floor(figures.at));
    liveData[1].push(figures.requests_per_second);
    if (liveData[0].length > 120) { liveData[0].shift(); liveData[1].shift(); }
    if (plots.live) plots.live.setData(liveData);
    const table = document.getElementById("breaker-table");
    if (table && figures.breakers) {
      const names = { 0: "closed", 1: "half-open", 2: "open" };
      for (const row of table.tBodies[0].rows) {
        const found = figures.breakers.find((b) => b.route === row.cells[0].textContent && b.backend === row.cells[1].textContent);
        if (found) { row.cells[2].textContent = names[found.state]; row.cells[2].className = "breaker-" + names[found.state]; }
      }
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/ws/metrics/live/`);
    socket.onopen = () => { backoff = 500; status.textContent = "live"; status.className = "live-status connected"; };
    socket.onmessage = (event) => show(JSON.parse(event.data));
    socket.onclose = () => {
      const wait = backoff;
      backoff = Math.min(backoff * 2, 10000);
      status.textContent = `disconnected, retrying in ${(wait / 1000).toFixed(1)} s`;
      status.className = "live-status disconnected";
      setTimeout(connect, wait);
    };
  }
  connect();
})();
