// The dashboard's Spend view: cost per bucket, one line per consumer and one per model (uPlot), from
// /api/metrics/llm/spend/?by=...; the range picker and tabs are dashboard.js's (its table-page behaviour).
(function () {
  "use strict";
  const root = document.getElementById("metrics-dashboard");
  const spendUrl = root && root.dataset.spendUrl;
  if (!spendUrl) return;
  const HEIGHT = 220;
  const MAX_LINES = 8; // the most expensive names get a line each; the rest would be unreadable
  const STEPS = [["10s", 10], ["1m", 60], ["5m", 300], ["1h", 3600], ["1d", 86400]];
  const rangeSeconds = Number(root.dataset.range);

  function colour(index) {
    const probe = document.createElement("span");
    probe.hidden = true;
    root.appendChild(probe);
    probe.style.color = `var(--metrics-series-${(index % 5) + 1})`;
    const value = getComputedStyle(probe).color;
    probe.remove();
    return value;
  }

  function interval() {
    for (const [name, step] of STEPS) if (rangeSeconds / step <= 400) return name;
    return "1d";
  }

  function draw(figure, body, step, start) {
    const holder = figure.querySelector(".plot");
    const series = body.series.slice(0, MAX_LINES);
    figure.querySelector(".empty").hidden = series.length > 0;
    if (typeof uPlot === "undefined" || series.length === 0) return;
    // One x value per bucket of the range, so every line shares the axis; a bucket without spend costs 0.
    const times = [];
    for (let t = start; t < start + rangeSeconds; t += step) times.push(t - (t % step));
    const index = new Map(times.map((t, i) => [t, i]));
    const data = [times].concat(series.map((part) => {
      const values = times.map(() => 0);
      for (const point of part.points) {
        const at = index.get(Date.parse(point.t) / 1000);
        if (at !== undefined) values[at] = point.cost_micros / 1e6;
      }
      return values;
    }));
    const by = figure.dataset.by;
    const options = {
      width: holder.clientWidth || 320, height: HEIGHT,
      scales: { x: { time: true } },
      series: [{}].concat(series.map((part, i) => ({
        label: part[by] || (by === "model" ? "(no target)" : "(no consumer)"), stroke: colour(i), width: 1.5,
        value: (u, v) => (v == null ? "–" : v.toFixed(6).replace(/\.?0+$/, "")),
      }))),
    };
    new uPlot(options, data, holder);
  }

  const chosen = interval();
  const step = STEPS.find(([name]) => name === chosen)[1];
  const end = Math.floor(Date.now() / 1000);
  const start = end - rangeSeconds;
  const figures = Array.from(root.querySelectorAll("#spend-charts .metrics-chart"));
  Promise.all(figures.map((figure) => {
    const query = new URLSearchParams({ interval: chosen, by: figure.dataset.by, start: String(start - (start % step)),
                                        end: String(end) });
    return fetch(`${spendUrl}?${query}`, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : { series: [] }))
      .then((body) => draw(figure, body, step, start));
  })).finally(() => { root.dataset.loaded = "1"; });
})();
