// Draws the run page's two charts from the JSON the server renders into #chart-data, and
// redraws them from the new JSON each time htmx refreshes the run's live part.
(function () {
  "use strict";

  const COLORS = {
    succeeded: "#2f9e44",
    invalid: "#c2255c",
    truncated: "#fab005",
    filtered: "#5f3dc4",
    failed: "#e03131",
    expired: "#f08c00",
    cancelled: "#7950f2",
    missing: "#495057",
    unavailable: "#868e96",
  };
  const charts = {};

  function sinceStart(seconds) {
    if (seconds < 1) return `${Math.round(seconds * 100) / 100} s`;
    if (seconds < 120) return `${Math.round(seconds * 10) / 10} s`;
    if (seconds < 7200) return `${Math.round(seconds / 6) / 10} min`;
    return `${Math.round(seconds / 360) / 10} h`;
  }

  function dollars(value) {
    return value >= 1 ? `$${value.toFixed(2)}` : `$${Number(value.toPrecision(2))}`;
  }

  function finishedConfig(data) {
    const datasets = data.finished.map(({ status, points }) => ({
      label: status,
      data: points.map(([x, y]) => ({ x, y })),
      borderColor: COLORS[status] || "#868e96",
      backgroundColor: COLORS[status] || "#868e96",
      stepped: true,
      pointRadius: 0,
      borderWidth: 2,
    }));
    return {
      type: "line",
      data: { datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: {
            type: "linear",
            min: 0,
            title: { display: true, text: "time since the first batch was sent" },
            ticks: { callback: sinceStart, maxTicksLimit: 8 },
          },
          y: {
            beginAtZero: true,
            title: { display: true, text: "requests" },
            ticks: { precision: 0 },
          },
        },
        plugins: {
          legend: { position: "bottom" },
          title: { display: datasets.length === 0, text: "No request has a result yet" },
        },
      },
    };
  }

  function costConfig(data) {
    return {
      type: "bar",
      data: {
        labels: data.models,
        datasets: [
          { label: "cost so far", data: data.cost, backgroundColor: "#1c7ed6" },
          {
            label: "estimated (output at its maximum)",
            data: data.estimate,
            backgroundColor: "#a5d8ff",
          },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { callback: dollars } } },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: { label: (item) => `${item.dataset.label}: ${dollars(item.parsed.y)}` },
          },
        },
      },
    };
  }

  function draw(name, canvasId, config) {
    const canvas = document.getElementById(canvasId);
    if (!canvas) return;
    const existing = charts[name];
    if (existing && existing.canvas === canvas) {
      existing.data = config.data;
      existing.options = config.options;
      existing.update("none");
    } else {
      if (existing) existing.destroy();
      charts[name] = new window.Chart(canvas, config);
    }
  }

  function drawAll() {
    const source = document.getElementById("chart-data");
    if (!source || !window.Chart) return;
    const data = JSON.parse(source.textContent);
    draw("finished", "chart-finished", finishedConfig(data));
    draw("cost", "chart-cost", costConfig(data));
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
