/*
 * The hosted form page inside an iframe: tells its parent how tall it is, so
 * the embed script (leadflow-embed.js) can size the iframe to fit — on load,
 * and whenever the page changes height (errors shown, a thank-you page).
 */
(function () {
  "use strict";
  if (window.parent === window) return;
  var last = 0;

  function post() {
    var height = Math.ceil(document.documentElement.scrollHeight);
    if (height === last) return;
    last = height;
    // The height is no secret: any embedding page may know it ("*"); the
    // receiving script checks that the message comes from its own iframe.
    window.parent.postMessage({ type: "leadflow:height", height: height }, "*");
  }

  window.addEventListener("load", post);
  if (window.ResizeObserver) new ResizeObserver(post).observe(document.body);
  else window.addEventListener("resize", post);
  post();
})();
