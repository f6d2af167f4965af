/* lora-pipeline dashboard: chart helpers over uPlot (vendored in ./uplot). No build step, no globals but lp. */
"use strict";
var lp = window.lp || {};
window.lp = lp;

lp.palette = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d", "#4d7c0f", "#334155"];

/* Columns {steps: [...], name: [...]} -> uPlot data [xs, ys...] for the named series. */
lp.toData = function (columns, names) {
  var data = [columns.steps.slice()];
  names.forEach(function (name) { data.push((columns[name] || []).slice()); });
  return data;
};

/* Append a tick's points (columns) to uPlot data in place; returns how many steps were added. */
lp.appendData = function (data, columns, names) {
  var last = data[0].length ? data[0][data[0].length - 1] : -Infinity;
  var added = 0;
  columns.steps.forEach(function (step, i) {
    if (step <= last) return;
    data[0].push(step);
    names.forEach(function (name, k) { data[k + 1].push(columns[name][i]); });
    added += 1;
  });
  return added;
};

/* Axis ticks: three significant digits, exponent for tiny values (learning rates). */
lp.tick = function (value) {
  if (value === null) return "";
  var abs = Math.abs(value);
  return abs !== 0 && abs < 1e-2 ? value.toExponential(1) : String(+value.toPrecision(3));
};

lp.fmt = function (value) {
  if (value === null || value === undefined) return "–";
  var abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(4) : String(+value.toPrecision(6));
};

/* A line chart filling el's width; opts: {labels, log, sync, onSelect(min, max), onReset()}. */
lp.chart = function (el, data, opts) {
  var series = [{ label: "step" }];
  opts.labels.forEach(function (label, i) {
    series.push({ label: label, stroke: lp.palette[i % lp.palette.length], width: 1.5, spanGaps: true,
                  value: function (u, v) { return lp.fmt(v); } });
  });
  var hooks = {};
  if (opts.onSelect) {
    hooks.setSelect = [function (u) {
      if (u.select.width < 2) return;
      opts.onSelect(u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
    }];
  }
  var chart = new uPlot({
    width: Math.max(320, el.clientWidth),
    height: opts.height || 260,
    series: series,
    scales: { x: { time: false }, y: opts.log ? { distr: 3 } : {} },
    axes: [{ label: "step" }, { size: 70, values: function (u, vals) { return vals.map(lp.tick); } }],
    cursor: { sync: opts.sync ? { key: opts.sync } : undefined, drag: { x: true, y: false } },
    legend: { live: true },
    hooks: hooks
  }, data, el);
  window.addEventListener("resize", function () { chart.setSize({ width: Math.max(320, el.clientWidth), height: opts.height || 260 }); });
  return chart;
};
