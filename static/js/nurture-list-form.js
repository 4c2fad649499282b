// The filter only matters for dynamic lists: hide it for static ones.
(function() {
  var editor = document.getElementById("filter-editor");
  function sync() {
    var chosen = document.querySelector("#list-form input[name=kind]:checked");
    editor.classList.toggle("d-none", !!chosen && chosen.value !== "dynamic");
  }
  document.querySelectorAll("#list-form input[name=kind]").forEach(function(r) { r.addEventListener("change", sync); });
  sync();
})();
