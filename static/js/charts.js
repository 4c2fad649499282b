// The one Chart.js glue (loaded by templates/partials/chart_js.html): draws every
// <canvas data-chart="ID of a json_script element" data-chart-kind="KIND"> on load
// and after each htmx swap; no inline script (the Content-Security-Policy forbids it).
// Kinds and their data:
// - spark (nurture list growth): {"labels": [...], "data": [...]};
// - bars (nurture reports): {"labels": [...], "series": [{"label", "data"}]};
// - score (scoring histograms): {"labels", "series": [{"label", "data"}], "mql_from"},
//   bars from the MQL threshold up in the darker shade;
// - report (reports/charts.py): {kind, labels, datasets: [{label, data, type?, axis?,
//   format?}], format, options}, kind: line | bar | stacked | hbar | funnel | doughnut.
(function() {
  "use strict";
  var colors = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#64748b", "#a855f7"];
  var palette = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#a855f7", "#14b8a6",
    "#f97316", "#64748b", "#ec4899", "#84cc16", "#06b6d4", "#eab308"];
  var scorePalettes = [
    ["#c7d2fe", "#4f46e5"],
    ["#fde68a", "#d97706"]
  ];

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

  function score(canvas, data) {
    var several = data.series.length > 1;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(function(series, i) {
          var p = several ? [scorePalettes[i][1], scorePalettes[i][1]] : scorePalettes[i];
          return {
            label: series.label,
            data: series.data,
            borderRadius: 3,
            backgroundColor: series.data.map(function(_, j) {
              return j >= data.mql_from ? p[1] : p[0];
            })
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: {
            display: several
          }
        },
        scales: {
          x: {
            title: {
              display: true,
              text: "Total score"
            },
            grid: {
              display: false
            }
          },
          y: {
            beginAtZero: true,
            ticks: {
              precision: 0
            },
            title: {
              display: true,
              text: "Leads"
            }
          }
        }
      }
    });
  }

  function formatter(kind) {
    return function(v) {
      if (v === null || v === undefined) return "—";
      if (kind === "pct") return (v * 100).toFixed(1) + "%";
      if (kind === "money") return Number(v).toLocaleString(undefined, {maximumFractionDigits: 0});
      if (kind === "duration") {
        var m = v / 60;
        if (m < 60) return m.toFixed(0) + "m";
        if (m < 1440) return (m / 60).toFixed(1) + "h";
        return (m / 1440).toFixed(1) + "d";
      }
      return Number(v).toLocaleString();
    };
  }

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  function reportConfig(data) {
    var kind = data.kind;
    var fmt = formatter(data.format);
    var horizontal = kind === "hbar" || kind === "funnel";
    var datasets = data.datasets.map(function(ds, i) {
      var color = ds.color || palette[i % palette.length];
      var out = {
        label: ds.label,
        data: ds.data,
        borderColor: color,
        backgroundColor: kind === "line" ? alpha(color, 0.12) : color,
        borderRadius: kind === "line" ? 0 : 4,
        maxBarThickness: 48
      };
      if (kind === "line" || ds.type === "line") {
        out.type = "line";
        out.cubicInterpolationMode = "monotone";
        out.fill = kind === "line" && i === 0;
        out.pointRadius = ds.data.length > 40 ? 0 : 3;
        out.borderWidth = 2;
        out.backgroundColor = alpha(color, kind === "line" && i === 0 ? 0.12 : 1);
      }
      if (ds.dashed) out.borderDash = [6, 4];
      if (ds.axis) out.yAxisID = ds.axis;
      if (kind === "funnel") {
        out.backgroundColor = ds.data.map(function(_, j) {
          return alpha(palette[0], 1 - j * 0.12);
        });
      }
      if (kind === "doughnut") {
        out.backgroundColor = ds.data.map(function(_, j) { return palette[j % palette.length]; });
        out.borderRadius = 0;
      }
      return out;
    });
    var valueAxis = {
      beginAtZero: true,
      grid: {color: "#eef0f3"},
      ticks: {precision: 0, callback: fmt},
      stacked: kind === "stacked"
    };
    var categoryAxis = {grid: {display: false}, stacked: kind === "stacked", ticks: {autoSkip: true, maxRotation: 0}};
    var scales = horizontal ? {x: valueAxis, y: categoryAxis} : {x: categoryAxis, y: valueAxis};
    data.datasets.forEach(function(ds) {
      if (ds.axis && ds.axis !== "y") {
        var f = formatter(ds.format || data.format);
        scales[ds.axis] = {position: "right", beginAtZero: true, grid: {display: false},
          ticks: {callback: f}};
      }
    });
    var config = {
      type: kind === "doughnut" ? "doughnut" : (kind === "line" ? "line" : "bar"),
      data: {labels: data.labels, datasets: datasets},
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: {mode: kind === "doughnut" ? "nearest" : "index", intersect: false},
        plugins: {
          legend: {
            display: kind === "doughnut" || datasets.length > 1,
            position: kind === "doughnut" ? "right" : "bottom",
            labels: {usePointStyle: true, boxWidth: 8}
          },
          tooltip: {
            callbacks: {
              label: function(ctx) {
                var ds = data.datasets[ctx.datasetIndex];
                var f = formatter(ds.format || data.format);
                return " " + (ds.label || ctx.label) + ": " + f(ctx.raw);
              }
            }
          }
        },
        scales: kind === "doughnut" ? {} : scales
      }
    };
    return config;
  }

  function report(canvas, data) {
    return new Chart(canvas, reportConfig(data));
  }

  var builders = {spark: spark, bars: bars, score: score, report: report};

  function draw() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(function(canvas) {
      if (canvas.dataset.drawn) return;
      var build = builders[canvas.dataset.chartKind];
      var source = document.getElementById(canvas.dataset.chart);
      if (!build || !source) return;
      build(canvas, JSON.parse(source.textContent));
      canvas.dataset.drawn = "1";
    });
  }
  if (window.Chart) {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#4b5563";
  }
  draw();
  document.body.addEventListener("htmx:afterSettle", draw);
})();
