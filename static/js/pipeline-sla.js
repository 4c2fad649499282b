// Keep the SLA countdowns honest between page loads: re-count every 30 s from
// each badge's deadline (the server rendered the first text).
(function() {
  function span(ms) {
    var m = Math.max(0, Math.floor(ms / 60000));
    if (m < 60) return m + "m";
    var h = Math.floor(m / 60);
    if (h < 48) return h + "h" + (m % 60 ? " " + (m % 60) + "m" : "");
    return Math.floor(h / 24) + "d";
  }
  function tick() {
    document.querySelectorAll("[data-due]").forEach(function(badge) {
      var left = new Date(badge.dataset.due) - new Date();
      var text = badge.querySelector(".sla-text");
      if (!text || isNaN(left)) return;
      text.textContent = left > 0 ? "due in " + span(left) : "overdue " + span(-left);
      badge.classList.toggle("text-bg-danger", left <= 0);
      badge.classList.toggle("text-bg-warning", left > 0 && left <= 15 * 60000);
      badge.classList.toggle("text-bg-light", left > 15 * 60000);
    });
  }
  setInterval(tick, 30000);
})();
