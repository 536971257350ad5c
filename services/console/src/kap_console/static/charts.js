// PHQ-9 / GAD-7 trend charts (uPlot), drawn from each chart's data-chart JSON.
// The same numbers are in the table under each chart, for screen readers and print.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var spec = JSON.parse(el.getAttribute("data-chart"));
      var xs = [], ys = [];
      if (spec.baseline !== null) { xs.push(0); ys.push(spec.baseline); }
      spec.points.forEach(function (p, i) { xs.push(i + 1); ys.push(p[1]); });
      if (xs.length === 0) { el.textContent = "No scores yet."; return; }
      var flat = function (v) { return xs.map(function () { return v; }); };
      var series = [{}, { label: spec.label, stroke: "#1a4f8b", width: 2, points: { show: true, size: 7 } }];
      var data = [xs, ys];
      if (spec.response !== null) { series.push({ label: "response (50% of baseline)", stroke: "#7a4b00", dash: [6, 4] }); data.push(flat(spec.response)); }
      series.push({ label: "remission (below " + spec.remission + ")", stroke: "#1d6b35", dash: [2, 4] }); data.push(flat(spec.remission));
      var width = Math.max(280, Math.min(el.clientWidth || 480, 560));
      new uPlot({ width: width, height: 200, series: series, scales: { x: { time: false } },
                  axes: [{ label: "assessment (0 = baseline)" }, { label: "total" }] }, data, el);
    });
  });
})();
