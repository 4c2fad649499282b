// <canvas data-nurture-chart="ID of a json_script element" data-chart-kind="spark|bars">.
// Sparklines: {"labels": [...], "data": [...]}; bars: {"labels": [...], "series": [{"label", "data"}]}.
(function() {
  var colors = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#64748b", "#a855f7"];

  function spark(canvas, data) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{
          data: data.data,
          backgroundColor: "#a5b4fc",
          hoverBackgroundColor: "#4f46e5",
          borderRadius: 2,
          minBarLength: 2, // an empty week still shows as a stub on the baseline
          barPercentage: 0.9,
          categoryPercentage: 1
        }]
      },
      options: {
        responsive: false,
        animation: false,
        plugins: {
          legend: {display: false},
          tooltip: {
            displayColors: false,
            callbacks: {
              label: function(ctx) { return ctx.parsed.y + " added"; }
            }
          }
        },
        scales: {x: {display: false}, y: {display: false, beginAtZero: true}}
      }
    });
  }

  function bars(canvas, data) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(function(series, i) {
          return {
            label: series.label,
            data: series.data,
            backgroundColor: colors[i % colors.length],
            borderRadius: 3
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {legend: {display: data.series.length > 1, position: "bottom"}},
        scales: {
          x: {grid: {display: false}},
          y: {beginAtZero: true, ticks: {precision: 0}}
        }
      }
    });
  }

  function draw() {
    document.querySelectorAll("canvas[data-nurture-chart]").forEach(function(canvas) {
      if (canvas.dataset.drawn || !window.Chart) return;
      var source = document.getElementById(canvas.dataset.nurtureChart);
      if (!source) return;
      var data = JSON.parse(source.textContent);
      (canvas.dataset.chartKind === "spark" ? spark : bars)(canvas, data);
      canvas.dataset.drawn = "1";
    });
  }
  draw();
  document.body.addEventListener("htmx:afterSettle", draw);
})();
