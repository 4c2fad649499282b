// Condition editor: offer only the operators that fit the chosen field, show the
// custom attribute key only for "Custom attribute…", and no value for "is empty".
(function() {
  var source = document.getElementById("operators-by-field");
  var field = document.getElementById("id_field");
  var operator = document.getElementById("id_operator");
  if (!source || !field || !operator) return;
  var allowed = JSON.parse(source.textContent);
  var customKey = document.querySelector(".js-custom-key");
  var value = document.getElementById("id_value");

  function sync() {
    var ops = allowed[field.value] || null;
    Array.prototype.forEach.call(operator.options, function(option) {
      option.disabled = ops !== null && ops.indexOf(option.value) === -1;
    });
    if (ops && operator.selectedOptions[0] && operator.selectedOptions[0].disabled) {
      operator.value = ops[0];
    }
    if (customKey) customKey.hidden = field.value !== "custom";
    if (value) value.disabled = operator.value === "empty" || operator.value === "not_empty";
  }
  field.addEventListener("input", sync);
  operator.addEventListener("input", sync);
  sync();
})();
