/* meterd dashboard script: draws charts with uPlot from POST /v1/query answers (relayed at <base>/api/query
   with the session cookie and the page's CSRF token), and small form helpers. No inline script is needed. */
(function () {
  "use strict";

  var PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#8f7a00", "#000000",
                 "#7b3294", "#a6611a"];
  var charts = {};
  window.meterdCharts = charts;

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  }

  function formatNumber(v) {
    if (v === null || v === undefined || isNaN(v)) { return "–"; }
    if (Number.isInteger(v)) { return v.toLocaleString("en-US"); }
    return v.toLocaleString("en-US", { maximumFractionDigits: 4 });
  }

  function groupLabel(group) {
    var keys = Object.keys(group);
    return keys.map(function (k) { return group[k] === null ? "(none)" : String(group[k]); }).join(" · ");
  }

  /* Rows of a /v1/query answer as aligned series: x (seconds) and one value array per (meter, group). */
  function pivot(rows, manyMeters) {
    var xs = [], xIndex = {}, labels = [], byLabel = {};
    rows.forEach(function (r) {
      var t = Date.parse(r.start) / 1000;
      if (!(t in xIndex)) { xIndex[t] = true; xs.push(t); }
      var g = groupLabel(r.group);
      var label = g ? (manyMeters ? r.meter + " · " + g : g) : r.meter;
      if (!(label in byLabel)) { byLabel[label] = {}; labels.push(label); }
      byLabel[label][t] = r.value;
    });
    xs.sort(function (a, b) { return a - b; });
    var series = labels.map(function (label) {
      return xs.map(function (t) { return t in byLabel[label] ? byLabel[label][t] : null; });
    });
    return { x: xs, labels: labels, series: series };
  }

  function setStatus(el, state, text) {
    el.setAttribute("data-state", state);
    var status = el.querySelector(".chart-status");
    if (!status) {
      status = document.createElement("p");
      status.className = "chart-status";
      status.setAttribute("aria-live", "polite");
      el.appendChild(status);
    }
    status.textContent = text;
    status.hidden = !text;
  }

  function formatTime(seconds, tz) {
    try {
      return new Date(seconds * 1000).toLocaleString("sv-SE", { timeZone: tz, hour12: false }).slice(0, 16);
    } catch (e) {
      return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
    }
  }

  function fillTable(id, data, tz) {
    var wrap = document.getElementById(id + "-table");
    if (!wrap) { return; }
    var table = document.createElement("table");
    var head = table.createTHead().insertRow();
    var th = document.createElement("th");
    th.scope = "col";
    th.textContent = "Window start (" + tz + ")";
    head.appendChild(th);
    data.labels.forEach(function (label) {
      var c = document.createElement("th");
      c.scope = "col";
      c.className = "num";
      c.textContent = label;
      head.appendChild(c);
    });
    var body = table.createTBody();
    data.x.forEach(function (t, i) {
      var row = body.insertRow();
      var h = document.createElement("th");
      h.scope = "row";
      h.textContent = formatTime(t, tz);
      row.appendChild(h);
      data.series.forEach(function (s) {
        var cell = row.insertCell();
        cell.className = "num";
        cell.textContent = formatNumber(s[i]);
      });
    });
    wrap.textContent = "";
    wrap.appendChild(table);
  }

  function draw(el, id, data, tz) {
    charts[id] = { labels: data.labels, x: data.x, series: data.series, timeZone: tz, plot: null };
    fillTable(id, data, tz);
    if (!data.x.length) { setStatus(el, "empty", "No usage in this range."); return; }
    if (typeof window.uPlot !== "function") { setStatus(el, "error", "The chart library did not load."); return; }
    setStatus(el, "ready", "");
    var width = Math.max(260, el.clientWidth - 16);
    var opts = {
      width: width,
      height: width < 500 ? 240 : 300,
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), tz); },
      cursor: { focus: { prox: 24 } },
      legend: { live: true },
      scales: { x: { time: true } },
      axes: [{}, { values: function (u, vals) { return vals.map(formatNumber); }, size: 70 }],
      series: [{ label: "Time (" + tz + ")" }].concat(data.labels.map(function (label, i) {
        return {
          label: label,
          stroke: PALETTE[i % PALETTE.length],
          width: 2,
          points: { show: data.x.length < 60, size: 6 },
          value: function (u, v) { return formatNumber(v); },
          spanGaps: false
        };
      }))
    };
    var plot = new window.uPlot(opts, [data.x].concat(data.series), el);
    charts[id].plot = plot;
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var w = Math.max(260, el.clientWidth - 16);
        if (Math.abs(w - plot.width) > 4) { plot.setSize({ width: w, height: w < 500 ? 240 : 300 }); }
      }).observe(el);
    }
  }

  function load(el) {
    var id = el.id;
    var config = JSON.parse(document.getElementById(el.getAttribute("data-chart")).textContent);
    var tz = config.time_zone || "UTC";
    if (config.points) {
      var p = config.points;
      draw(el, id, { x: p.x, labels: p.series.map(function (s) { return s.label; }),
                     series: p.series.map(function (s) { return s.values; }) }, tz);
      return;
    }
    fetch(meta("meterd-base") + "/api/query", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "accept": "application/json",
                 "x-csrf-token": meta("csrf-token") },
      body: JSON.stringify(config.query)
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      if (!answer.ok) {
        setStatus(el, "error", "The chart could not be loaded: " + (answer.body.detail || "error"));
        return;
      }
      var meters = config.query.meters || [];
      draw(el, id, pivot(answer.body.rows, meters.length !== 1), tz);
    }).catch(function () {
      setStatus(el, "error", "The chart could not be loaded: the server did not answer.");
    });
  }

  function wireForms() {
    document.querySelectorAll("[data-fill-tz]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = document.getElementById(button.getAttribute("data-fill-tz"));
        try { input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { input.value = "UTC"; }
        input.focus();
      });
    });
    var range = document.getElementById("range");
    ["from", "to"].forEach(function (name) {
      var input = document.getElementById(name);
      if (range && input && range.querySelector('option[value="custom"]')) {
        input.addEventListener("input", function () { range.value = "custom"; });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireForms();
    document.querySelectorAll("[data-chart]").forEach(load);
  });
})();
