// The metrics dashboard: history charts (uPlot) from /api/metrics/history/, live figures over a WebSocket.
(function () {
  "use strict";
  const root = document.getElementById("metrics-dashboard");
  if (!root) return;
  const chartList = document.getElementById("metrics-charts");
  if (!chartList) { tablePage(); return; }
  const charts = JSON.parse(chartList.textContent);
  const route = root.dataset.route;
  const consumer = root.dataset.consumer;
  const historyUrl = root.dataset.historyUrl;
  const catalogUrl = root.dataset.catalogUrl;
  const STEPS = { "10s": 10, "1m": 60, "5m": 300, "1h": 3600, "1d": 86400 };
  const COUNTS = new Set(["rate", "errors_4xx", "errors_5xx", "errors_gateway", "bytes_in", "bytes_out", "count"]);
  const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];
  const HEIGHT = 220;
  const MIN_AXIS_SIZE = 50; // room for half the x axis's first label ("12/6/26 1:08pm"), centred on the y axis
  const X_TICK_SPACE = 80; // pixels between time ticks: their second line (the date) must not overlap on a phone
  const MIN_INTERVALS = 10; // a trimmed x axis still spans this many intervals (a lone first point is not a line)
  const plots = {};
  window.rustaCharts = plots;
  const drawn = {}; // chart id -> its data, to draw again in the other theme
  const liveData = [[], []];

  const rangePicker = document.getElementById("range");
  const intervalPicker = document.getElementById("interval");
  const routePicker = document.getElementById("route-picker");
  const rangeNote = document.getElementById("range-note");

  // --- The chosen range and resolution live in the query string: a reload or a shared link keeps them --------
  function carryQuery() {
    for (const link of document.querySelectorAll(".metrics-tabs a")) link.search = window.location.search;
  }

  function rememberChoice() {
    const query = new URLSearchParams(window.location.search);
    query.set("range", rangePicker.value);
    if (intervalPicker.value === "auto") query.delete("interval");
    else query.set("interval", intervalPicker.value);
    // replaceState: the back button leaves the dashboard instead of stepping through every range tried
    window.history.replaceState(null, "", `${window.location.pathname}?${query}${window.location.hash}`);
    carryQuery();
  }

  routePicker.addEventListener("change", () => {
    const path = routePicker.value ? `/admin/metrics/dashboard/route/${encodeURIComponent(routePicker.value)}/`
                                   : "/admin/metrics/dashboard/";
    window.location.href = path + window.location.search;
  });
  carryQuery();

  // --- Colours come from CSS variables (dashboard.css maps the admin's), so charts follow its light or dark theme
  const probe = document.createElement("span");
  probe.hidden = true;
  root.appendChild(probe);

  function cssColour(variable) {
    probe.style.color = `var(${variable})`;
    return getComputedStyle(probe).color;
  }

  function palette() {
    return {
      text: cssColour("--metrics-text"), grid: cssColour("--metrics-grid"), ticks: cssColour("--metrics-ticks"),
      series: [1, 2, 3, 4, 5].map((i) => cssColour(`--metrics-series-${i}`)),
    };
  }

  // --- Figures in the units people read -------------------------------------------------------------------
  function significant(value) {
    return String(Number(value.toPrecision(3)));
  }

  function formatBytes(value) {
    let unit = 0;
    while (Math.abs(value) >= 999.5 && unit < BYTE_UNITS.length - 1) { value /= 1000; unit += 1; }
    return `${significant(value)} ${BYTE_UNITS[unit]}`;
  }

  function formatValue(unit, value) {
    if (value == null) return "–";
    if (unit === "s") return value >= 1 ? significant(value) + " s" : significant(value * 1000) + " ms";
    if (unit === "ratio") return (value * 100).toFixed(1) + "%";
    if (unit === "bytes") return formatBytes(value);
    return Number.isInteger(value) ? String(value) : value.toFixed(2);
  }

  // The y axis is as wide as its widest label, measured in the axis's font (a fixed width clipped long ones).
  function axisSize(u, values, axisIndex, cycle) {
    const axis = u.axes[axisIndex];
    if (cycle > 1) return axis._size; // uPlot asks until sizes settle; the labels are known by then
    const room = axis.ticks.size + axis.gap;
    if (!values) return MIN_AXIS_SIZE;
    u.ctx.font = axis.font[0];
    const widest = Math.max(0, ...values.map((v) => u.ctx.measureText(String(v)).width)) / devicePixelRatio;
    return Math.max(MIN_AXIS_SIZE, Math.ceil(room + widest + 2));
  }

  function chooseInterval(seconds) {
    if (intervalPicker.value !== "auto") return intervalPicker.value;
    for (const [name, step] of Object.entries(STEPS)) {
      if (seconds / step <= 400) return name;
    }
    return "1d";
  }

  function drawChart(spec, data) {
    const figure = document.getElementById("chart-" + spec.id);
    const holder = figure.querySelector(".plot");
    drawn[spec.id] = data;
    if (typeof uPlot === "undefined") return;
    // A ratio of 0 is a measurement (traffic, no 5xx); it is null where there was no traffic. Counts of 0 are
    // what a quiet range stores, and read as "no data".
    const counts = (v) => v != null && (v !== 0 || spec.unit === "ratio");
    const hasData = data[0].length > 0 && data.slice(1).some((series) => series.some(counts));
    figure.querySelector(".empty").hidden = hasData || spec.live;
    const colours = palette();
    const axis = () => ({ stroke: colours.text, grid: { stroke: colours.grid, width: 1 },
                          ticks: { stroke: colours.ticks, width: 1 } });
    const options = {
      width: holder.clientWidth || 320, height: HEIGHT,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : (spec.unit === "ratio" ? 0.01 : 1)] } },
      series: [{}].concat(spec.fields.map((field, i) => ({
        label: field, stroke: colours.series[i % colours.series.length], width: 1.5, spanGaps: false,
        points: { show: !COUNTS.has(field), size: 5 },  // latency and ratios have gaps: lone points must show
        value: (u, v) => formatValue(spec.unit, v),
      }))),
      axes: [{ ...axis(), space: X_TICK_SPACE }, { ...axis(), values: (u, ticks) => ticks.map((v) => formatValue(spec.unit, v)), size: axisSize }],
      hooks: { setSelect: [(u) => zoomAll(u)] },
    };
    if (plots[spec.id]) plots[spec.id].destroy();
    plots[spec.id] = new uPlot(options, data, holder);
  }

  function drawAgain() {
    for (const spec of charts) if (drawn[spec.id]) drawChart(spec, drawn[spec.id]);
  }
  new MutationObserver(drawAgain).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawAgain);

  // Charts follow their box's width (a phone, a rotated tablet, a resized window).
  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const plot = plots[entry.target.parentElement.id.replace(/^chart-/, "")];
      const width = entry.target.clientWidth;
      if (plot && width > 0 && width !== plot.width) plot.setSize({ width, height: HEIGHT });
    }
  });
  for (const holder of root.querySelectorAll(".metrics-chart .plot")) resizer.observe(holder);

  function zoomAll(source) {
    if (source.select.width <= 0) return;
    const min = source.posToVal(source.select.left, "x");
    const max = source.posToVal(source.select.left + source.select.width, "x");
    for (const plot of Object.values(plots)) {
      if (plot !== plots.live) plot.setScale("x", { min, max });
    }
    source.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
  }

  // The oldest stored point of a resolution (the series catalogue): a new install has less than the range.
  // Once it is older than the range's start it is kept: the catalogue reads whole tables, and retention only
  // ever moves the oldest point later, far behind any range.
  const oldestKnown = {};

  function oldestPoint(interval, rangeStart) {
    if (oldestKnown[interval] != null && oldestKnown[interval] <= rangeStart) {
      return Promise.resolve(oldestKnown[interval]);
    }
    return fetch(catalogUrl, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : { resolutions: [] }))
      .then((body) => {
        const found = body.resolutions.find((r) => r.interval === interval);
        const oldest = found && found.oldest_point ? Math.floor(Date.parse(found.oldest_point) / 1000) : null;
        oldestKnown[interval] = oldest;
        return oldest;
      })
      .catch(() => null);
  }

  // The x axis starts at the range's start, or at the oldest stored point when that is later (with at least
  // MIN_INTERVALS intervals shown), so a new install's few minutes fill the charts instead of one edge.
  function firstShown(rangeStart, end, step, oldest) {
    if (oldest == null || oldest <= rangeStart) return rangeStart;
    const latest = Math.floor(end / step) * step - MIN_INTERVALS * step;
    return Math.max(rangeStart, Math.min(Math.floor(oldest / step) * step, latest));
  }

  async function loadHistory() {
    const span = Number(rangePicker.value);
    const end = Math.ceil(Date.now() / 1000);
    const interval = chooseInterval(span);
    const step = STEPS[interval];
    const rangeStart = Math.floor((end - span) / step) * step;
    const oldest = oldestPoint(interval, rangeStart);
    const byName = {};
    for (const spec of charts) {
      if (spec.live || byName[spec.name]) continue;
      const query = new URLSearchParams({ name: spec.name, interval, start: String(rangeStart), end: String(end) });
      if (route) query.set("route", route);
      if (consumer) query.set("consumer", consumer);
      byName[spec.name] = fetch(`${historyUrl}?${query}`, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : { points: [] }));
    }
    const start = firstShown(rangeStart, end, step, await oldest);
    rangeNote.hidden = start === rangeStart;
    rangeNote.textContent = rangeNote.hidden ? "" :
      `History starts ${new Date(start * 1000).toLocaleString()}: the charts start there.`;
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

  function choose() {
    rememberChoice();
    loadHistory();
  }

  rangePicker.addEventListener("change", choose);
  intervalPicker.addEventListener("change", choose);
  document.getElementById("reset-zoom").addEventListener("click", loadHistory);
  loadHistory();
  setInterval(loadHistory, 30000); // coarse refresh of the history; live figures come over the socket

  // --- Live figures over the WebSocket, reconnecting with backoff (a gateway restart drops it) ----------
  // A route's page shows that route's figures (`route_figures`); connections and workers are the gateway's.
  const status = document.getElementById("live-status");
  const NO_TRAFFIC = { requests_total: 0, requests_per_second: 0, errors_per_second: 0, p95_seconds: null };
  let backoff = 500;

  function setText(id, value) {
    const element = document.getElementById(id);
    if (element && value != null) element.textContent = String(value);
  }

  function show(figures) {
    const scope = route ? (figures.route_figures || {})[route] || NO_TRAFFIC : figures;
    for (const key of ["requests_total", "requests_per_second", "errors_per_second"]) setText("live-" + key, scope[key]);
    setText("live-p95", formatValue("s", scope.p95_seconds));
    for (const key of ["connections_active", "connections_peak", "workers"]) setText("live-" + key, figures[key]);
    setText("live-gateway-requests_per_second", figures.requests_per_second);
    liveData[0].push(Math.floor(figures.at));
    liveData[1].push(scope.requests_per_second);
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
    if (!status) return; // a consumer's page: the live socket carries no per-consumer figures
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

  // A page drawn by the server (the Consumers table): the route picker, and a range picker that reloads it.
  function tablePage() {
    const picker = document.getElementById("route-picker");
    const range = document.getElementById("range");
    const query = window.location.search;
    for (const link of document.querySelectorAll(".metrics-tabs a")) link.search = query;
    picker.addEventListener("change", () => {
      const path = picker.value ? `/admin/metrics/dashboard/route/${encodeURIComponent(picker.value)}/`
                                : "/admin/metrics/dashboard/";
      window.location.href = path + query;
    });
    if (range) {
      range.addEventListener("change", () => {
        const chosen = new URLSearchParams(window.location.search);
        chosen.set("range", range.value);
        window.location.search = chosen.toString();
      });
    }
  }
})();
