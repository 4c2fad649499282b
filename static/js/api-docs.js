// Starts Swagger UI on /api/v1/docs with the settings the server rendered as JSON.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("swagger-settings").textContent);
  config.dom_id = "#swagger-ui";
  config.presets = [window.SwaggerUIBundle.presets.apis];
  window.SwaggerUIBundle(config);
})();
