// Small behaviours declared in markup with data-* attributes, so that no page
// needs inline handlers (the Content-Security-Policy forbids onclick="…").
(function () {
  "use strict";

  // <form data-confirm="Delete this?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    // <input type="checkbox" data-check-all=".row-check">: (un)tick every row.
    if (target.matches("[data-check-all]")) {
      document.querySelectorAll(target.dataset.checkAll).forEach(function (box) {
        box.checked = target.checked;
      });
    }
    // <input data-select-on-click>: select the whole value (secrets to copy).
    if (target.matches("[data-select-on-click]")) target.select();
    // <button data-copy-from="input-id">: copy that input's value.
    var copy = target.closest("[data-copy-from]");
    if (copy) {
      var source = document.getElementById(copy.dataset.copyFrom);
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.value).then(function () {
          copy.textContent = "Copied";
        });
      }
    }
  });

  // <div data-height="260">: a chart box's height in px (set through the CSSOM,
  // which the policy allows, unlike a style attribute).
  function sizeBoxes(root) {
    (root || document).querySelectorAll("[data-height]").forEach(function (box) {
      box.style.height = parseInt(box.dataset.height, 10) + "px";
    });
  }
  sizeBoxes(document);
  document.addEventListener("htmx:load", function (event) { sizeBoxes(event.target); });
})();
