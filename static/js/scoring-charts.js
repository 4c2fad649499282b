// Score histograms: <canvas data-score-chart="ID of a json_script element">.
// Bars from the MQL threshold up are drawn in the darker shade.
(function() {
  var palettes = [
    ["#c7d2fe", "#4f46e5"],
    ["#fde68a", "#d97706"]
  ];

  function draw() {
    document.querySelectorAll("canvas[data-score-chart]").forEach(function(canvas) {
      if (canvas.dataset.drawn || !window.Chart) return;
      var source = document.getElementById(canvas.dataset.scoreChart);
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var several = data.series.length > 1;
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: data.series.map(function(series, i) {
            var p = several ? [palettes[i][1], palettes[i][1]] : palettes[i];
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
      canvas.dataset.drawn = "1";
    });
  }
  draw();
  document.body.addEventListener("htmx:afterSettle", draw);
})();
