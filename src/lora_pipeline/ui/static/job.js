/* The job page: draw the curves, then poll only the rows after the last step seen and append them. */
"use strict";
(function () {
  var state = JSON.parse(document.getElementById("job-data").textContent);
  var lossNames = ["train_loss", "eval_loss"], lrNames = ["learning_rate"];
  var overview = null;  // the whole history, downsampled to real points
  var detail = null;  // exact points of a zoomed range, when the overview is downsampled
  var charts = {};
  var total = 0;

  function adopt(series) {
    state.series = series;
    overview = { loss: lp.toData(series, lossNames), lr: lp.toData(series, lrNames) };
    total = series.total;
    state.last_step = series.steps.length ? series.steps[series.steps.length - 1] : -1;
    document.getElementById("job-steps").textContent = total;
  }

  function zoomTo(min, max) {
    if (state.series.exact) return;
    fetch("/api/jobs/" + state.id + "/series?start=" + min + "&end=" + max, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (cols) {
        detail = { loss: lp.toData(cols, lossNames), lr: lp.toData(cols, lrNames) };
        charts.loss.setData(detail.loss, false);
        charts.lr.setData(detail.lr, false);
      });
  }

  function draw() {
    var log = document.getElementById("log-scale").checked;
    ["loss", "lr"].forEach(function (k) { if (charts[k]) charts[k].destroy(); });
    charts.loss = lp.chart(document.getElementById("chart-loss"), overview.loss,
                           { labels: lossNames, log: log, sync: "job", onSelect: zoomTo });
    charts.lr = lp.chart(document.getElementById("chart-lr"), overview.lr,
                         { labels: lrNames, sync: "job", onSelect: zoomTo });
    window.lpCharts = charts;
  }

  /* Keyboard zoom for a focused chart: + and - zoom around the middle, arrows pan, 0 or Escape resets. */
  function onKey(event) {
    var x = charts.loss.scales.x, span = x.max - x.min, min = x.min, max = x.max;
    if (event.key === "+" || event.key === "=") { min += span / 4; max -= span / 4; }
    else if (event.key === "-") { min -= span / 2; max += span / 2; }
    else if (event.key === "ArrowLeft") { min -= span / 4; max -= span / 4; }
    else if (event.key === "ArrowRight") { min += span / 4; max += span / 4; }
    else if (event.key === "0" || event.key === "Escape") { resetZoom(); event.preventDefault(); return; }
    else return;
    event.preventDefault();
    charts.loss.setScale("x", { min: min, max: max });
    charts.lr.setScale("x", { min: min, max: max });
    zoomTo(min, max);
  }

  function resetZoom() {
    detail = null;
    charts.loss.setData(overview.loss, true);
    charts.lr.setData(overview.lr, true);
  }

  function addEvents(events) {
    var list = document.getElementById("events");
    events.forEach(function (e) {
      var item = document.createElement("li");
      item.className = "level-" + e.level;
      var when = document.createElement("time");
      when.textContent = e.at ? new Date(e.at).toLocaleTimeString() : "";
      var kind = document.createElement("b");
      kind.textContent = e.kind;
      item.append(when, " ", kind, " " + e.message);
      list.appendChild(item);
      state.last_event = Math.max(state.last_event, e.id);
    });
  }

  function tick() {
    var url = "/api/jobs/" + state.id + "/metrics?after=" + state.last_step + "&events_after=" + state.last_event;
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (update) {
      var pts = update.points;
      var added = lp.appendData(overview.loss, pts, lossNames);
      lp.appendData(overview.lr, pts, lrNames);
      if (detail) { lp.appendData(detail.loss, pts, lossNames); lp.appendData(detail.lr, pts, lrNames); }
      if (added) {
        state.last_step = pts.steps[pts.steps.length - 1];
        total += added;
        var shown = detail || overview;
        charts.loss.setData(shown.loss, !detail);
        charts.lr.setData(shown.lr, !detail);
      }
      document.getElementById("job-steps").textContent = total;
      document.getElementById("job-status").textContent = update.status;
      addEvents(update.events);
      state.terminal = update.terminal;
      document.getElementById("live").textContent = update.terminal ? "finished" : "live";
      if (!update.terminal) setTimeout(tick, state.poll_ms);
    }).catch(function () {
      document.getElementById("live").textContent = "reconnecting";
      setTimeout(tick, state.poll_ms * 2);
    });
  }

  function start() {
    draw();
    window.lpChartsDrawn = performance.now();
    document.getElementById("log-scale").addEventListener("change", draw);
    document.getElementById("reset-zoom").addEventListener("click", resetZoom);
    ["chart-loss", "chart-lr"].forEach(function (id) { document.getElementById(id).addEventListener("keydown", onKey); });
    if (!state.terminal) setTimeout(tick, state.poll_ms);
  }

  window.lpFirstPaint = performance.now();
  if (state.series) {
    adopt(state.series);
    start();
  } else {  // a first visit: the history comes on its own request, so the rest of the page need not wait
    fetch("/api/jobs/" + state.id + "/series", { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (series) { adopt(series); start(); })
      .catch(function () { document.getElementById("live").textContent = "could not load the history"; });
  }
})();
