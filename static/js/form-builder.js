/*
 * The field editor: the key follows the label (slug, unique in the form)
 * until someone edits the key by hand. The server makes the same key when
 * the key is left empty (leads.services.capture_forms.key_from_label).
 */
(function () {
  "use strict";
  var key = document.querySelector("[data-key-from]");
  if (!key) return;
  var label = document.getElementById(key.getAttribute("data-key-from"));
  if (!label) return;
  var taken = (key.getAttribute("data-key-taken") || "").split(" ").filter(Boolean);
  var reserved = ["consent", "page_url", "lf_token", "csrfmiddlewaretoken"];

  function slug(text) {
    var base = text
      .replace(/ß/g, "ss")
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_+|_+$/g, "")
      .slice(0, 56)
      .replace(/_+$/g, "") || "field";
    var candidate = base;
    for (var n = 2; taken.indexOf(candidate) >= 0 || reserved.indexOf(candidate) >= 0; n++) {
      candidate = base + "_" + n;
    }
    return candidate;
  }

  if (key.value) key.setAttribute("data-key-edited", "1");
  key.addEventListener("input", function () {
    key.setAttribute("data-key-edited", "1");
  });
  label.addEventListener("input", function () {
    if (key.getAttribute("data-key-edited")) return;
    key.value = slug(label.value);
  });
})();
