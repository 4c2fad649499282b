// Insert {{ field }} at the cursor of the last focused text input (body by default).
(function() {
  var target = document.getElementById("id_body_html");
  ["id_subject", "id_body_html", "id_body_text"].forEach(function(id) {
    var el = document.getElementById(id);
    if (el) el.addEventListener("focus", function() { target = el; });
  });
  document.querySelectorAll(".merge-field").forEach(function(button) {
    button.addEventListener("click", function() {
      var text = "{{ " + button.dataset.field + " }}";
      var start = target.selectionStart || 0, end = target.selectionEnd || 0;
      target.value = target.value.slice(0, start) + text + target.value.slice(end);
      target.focus();
      target.selectionStart = target.selectionEnd = start + text.length;
      target.dispatchEvent(new Event("input", {bubbles: true}));
    });
  });
  // The test send fills merge fields with the lead chosen in the preview.
  var testSend = document.querySelector("[data-testid=test-send]");
  if (testSend) testSend.addEventListener("submit", function() {
    var chosen = document.getElementById("preview-lead");
    if (chosen) document.getElementById("test-send-lead").value = chosen.value;
  });
})();
