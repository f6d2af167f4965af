/* The compare page: one chart per metric, one line per job, joined on step with uPlot.join. */
"use strict";
(function () {
  var curves = JSON.parse(document.getElementById("compare-data").textContent);
  var labels = curves.map(function (c) { return c.label; });
  var charts = {};

  function joined(metric) {
    var tables = curves.map(function (c) { return [c.series.steps, c.series[metric]]; });
    return uPlot.join(tables);
  }

  function draw() {
    var log = document.getElementById("log-scale").checked;
    Object.keys(charts).forEach(function (k) { charts[k].destroy(); });
    charts.train = lp.chart(document.getElementById("chart-train"), joined("train_loss"), { labels: labels, log: log, sync: "cmp" });
    charts.eval = lp.chart(document.getElementById("chart-eval"), joined("eval_loss"), { labels: labels, log: log, sync: "cmp" });
    window.lpCharts = charts;
  }

  draw();
  document.getElementById("log-scale").addEventListener("change", draw);
})();
