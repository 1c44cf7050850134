// The console's own script: no inline script anywhere (the Content-Security-Policy forbids
// it), so what a page needs beyond htmx is wired here from data attributes. Every page works
// without it.
(function () {
  "use strict";

  // Charts: <canvas data-chart="ID"> with <script type="application/json" id="ID"> holding
  // {type, labels, datasets}. Chart.js is loaded only by the pages that draw charts.
  function drawCharts(root) {
    if (typeof window.Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      canvas.dataset.drawn = "1";
      new window.Chart(canvas, {
        type: spec.type || "bar",
        data: { labels: spec.labels, datasets: spec.datasets },
        options: {
          animation: false,
          responsive: true,
          plugins: { legend: { display: (spec.datasets || []).length > 1 } },
          indexAxis: spec.indexAxis || "x",
          scales: spec.type === "doughnut" ? {} : { x: { stacked: !!spec.stacked }, y: { stacked: !!spec.stacked, beginAtZero: true } }
        }
      });
    });
  }

  // A button that asks before it acts: <button data-confirm="question">.
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-confirm]");
    if (target && !window.confirm(target.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // A button that prints the page: <button data-print>.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) {
      event.preventDefault();
      window.print();
    }
  });

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
