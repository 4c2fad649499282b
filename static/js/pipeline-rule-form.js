// Routing rule form: "Add condition" appends an empty row from the formset template.
(function() {
  var total = document.getElementById("id_cond-TOTAL_FORMS");
  document.getElementById("add-condition").addEventListener("click", function() {
    var html = document.getElementById("condition-template").innerHTML.replace(/__prefix__/g, total.value);
    document.getElementById("condition-rows").insertAdjacentHTML("beforeend", html);
    total.value = parseInt(total.value, 10) + 1;
  });
})();
