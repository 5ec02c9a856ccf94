// A route's AI routing page: the decision mix chart (uPlot) and the figures and tables, polled from its JSON.
(function () {
  "use strict";
  const root = document.getElementById("ai-routing");
  if (!root) return;
  const SOURCES = ["model", "llm", "cache", "fallback"];
  const NUMBERS = new Set(["model", "llm", "cache", "fallback", "total", "avg_ms", "count", "ms", "score"]);
  const HEIGHT = 240;
  const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
  const dataUrl = root.dataset.url;
  const pollMs = Number(root.dataset.pollSeconds) * 1000;
  const figure = document.getElementById("chart-ai-mix");
  const holder = figure.querySelector(".plot");
  let plot = null;
  let record = JSON.parse(document.getElementById("ai-routing-record").textContent);

  // Colours from the dashboard's CSS variables, so the chart follows the admin's light or dark theme.
  const probe = document.createElement("span");
  probe.hidden = true;
  root.appendChild(probe);
  function cssColour(variable) {
    probe.style.color = `var(${variable})`;
    return getComputedStyle(probe).color;
  }

  function chartData(chart) {
    return [chart.minutes].concat(SOURCES.map((source) => chart.series[source]));
  }

  function drawChart() {
    const data = chartData(record.chart);
    figure.querySelector(".empty").hidden = data.slice(1).some((series) => series.some((v) => v > 0));
    if (typeof uPlot === "undefined") return;
    const text = cssColour("--metrics-text");
    const axis = () => ({ stroke: text, grid: { stroke: cssColour("--metrics-grid"), width: 1 },
                          ticks: { stroke: cssColour("--metrics-ticks"), width: 1 } });
    const options = {
      width: holder.clientWidth || 320, height: HEIGHT,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      series: [{}].concat(SOURCES.map((source, i) => ({
        label: source, stroke: cssColour(`--metrics-series-${i + 1}`), width: 1.5, points: { show: false },
      }))),
      // Counts: whole-number ticks only, and room for six digits (100000 a minute is 1,700 decisions a second).
      axes: [{ ...axis(), space: 80 }, { ...axis(), incrs: COUNT_STEPS, size: 60,
                                         values: (u, ticks) => ticks.map((v) => String(v)) }],
    };
    if (plot) plot.destroy();
    plot = new uPlot(options, data, holder);
    window.rustaAiChart = plot; // the browser test reads what was drawn
  }

  function cell(row, column) {
    const td = document.createElement("td");
    const value = row[column];
    td.textContent = value == null || value === "" ? "–" : String(value);
    if (NUMBERS.has(column)) td.className = "number";
    return td;
  }

  function fillTable(id, rows) {
    const table = document.getElementById(id);
    const columns = table.dataset.columns.split(" ");
    const body = document.createElement("tbody");
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const column of columns) tr.appendChild(cell(row, column));
      body.appendChild(tr);
    }
    if (!rows.length) {
      const tr = body.insertRow();
      tr.className = "ai-empty";
      const td = tr.insertCell();
      td.colSpan = columns.length;
      td.textContent = table.dataset.empty;
    }
    table.replaceChild(body, table.tBodies[0]);
  }

  function setText(id, value) {
    const element = document.getElementById(id);
    if (element) element.textContent = String(value);
  }

  function show() {
    setText("ai-decisions", record.decisions);
    for (const source of SOURCES) setText(`ai-source-${source}`, record.sources[source]);
    for (const [action, count] of Object.entries(record.anomalies)) setText(`ai-anomalies-${action}`, count);
    setText("ai-agreement-rate", record.agreement.rate_text);
    setText("ai-agreement-counts", `${record.agreement.agreed} of ${record.agreement.compared}`);
    setText("ai-workers", record.workers);
    document.getElementById("ai-no-workers").hidden = record.workers > 0;
    document.getElementById("ai-no-decisions").hidden = record.decisions > 0;
    fillTable("ai-strategies", record.strategies);
    fillTable("ai-fallbacks", record.fallbacks);
    fillTable("ai-recent", record.recent);
    fillTable("ai-verdicts", record.verdicts);
    drawChart();
    root.dataset.updated = String(Date.now());
  }

  function poll() {
    fetch(dataUrl, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : null))
      .then((body) => { if (body) { record = body; show(); } })
      .catch(() => {}) // the gateway restarting: the next poll tries again
      .finally(() => setTimeout(poll, pollMs));
  }

  new MutationObserver(drawChart).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawChart);
  new ResizeObserver(() => {
    const width = holder.clientWidth;
    if (plot && width > 0 && width !== plot.width) plot.setSize({ width, height: HEIGHT });
  }).observe(holder);

  drawChart();
  root.dataset.loaded = String(Date.now());
  setTimeout(poll, pollMs);
})();
