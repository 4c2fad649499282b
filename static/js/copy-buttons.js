/*
 * Copy buttons: <button data-copy="#element-id"> copies that input's or
 * textarea's value (or an element's text) to the clipboard and says so.
 */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = "value" in source ? source.value : source.textContent;
    var label = button.querySelector("[data-copy-label]") || button;
    var before = label.textContent;

    function done(message) {
      label.textContent = message;
      window.setTimeout(function () {
        label.textContent = before;
      }, 1500);
    }

    function fallback() {
      if (source.select) {
        source.select();
        done(document.execCommand("copy") ? "Copied" : "Press Ctrl+C");
      } else done("Press Ctrl+C");
    }

    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () {
        done("Copied");
      }, fallback);
    } else fallback();
  });
})();
