/*
 * LeadFlow form embed (for a customer's own page; no dependencies).
 *
 *   <iframe data-leadflow-form src="https://…/f/<key>/" …></iframe>
 *   <script src="https://…/static/js/leadflow-embed.js" async></script>
 *
 * Every iframe marked data-leadflow-form gets the page's UTM parameters and
 * address passed on (for attribution) and is resized to fit its form: the
 * hosted form posts its height ({type: "leadflow:height", height}) to its
 * parent. A message counts only when it comes from one of these iframes — its
 * window and its origin — so no other frame or page can resize them.
 */
(function () {
  "use strict";
  var MAX_HEIGHT = 10000;
  var frames = [];

  function originOf(url) {
    try {
      return new URL(url, window.location.href).origin;
    } catch (e) {
      return "";
    }
  }

  function withPageContext(src) {
    var url;
    try {
      url = new URL(src, window.location.href);
    } catch (e) {
      return src;
    }
    var here = new URLSearchParams(window.location.search);
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (k) {
      if (here.get(k) && !url.searchParams.get(k)) url.searchParams.set(k, here.get(k));
    });
    if (!url.searchParams.get("page_url")) url.searchParams.set("page_url", window.location.href);
    return url.toString();
  }

  function attach(frame) {
    if (frame.getAttribute("data-leadflow-ready")) return;
    frame.setAttribute("data-leadflow-ready", "1");
    var src = withPageContext(frame.getAttribute("src") || frame.getAttribute("data-src") || "");
    frames.push({ frame: frame, origin: originOf(src) });
    frame.setAttribute("scrolling", "no");
    if (frame.getAttribute("src") !== src) frame.setAttribute("src", src);
  }

  function onMessage(event) {
    var data = event.data;
    if (!data || typeof data !== "object" || data.type !== "leadflow:height") return;
    for (var i = 0; i < frames.length; i++) {
      var item = frames[i];
      if (event.source === item.frame.contentWindow && event.origin === item.origin) {
        var height = Math.ceil(Number(data.height));
        if (height > 0 && height <= MAX_HEIGHT) item.frame.style.height = height + "px";
        return;
      }
    }
  }

  function scan() {
    var found = document.querySelectorAll("iframe[data-leadflow-form]");
    for (var i = 0; i < found.length; i++) attach(found[i]);
  }

  window.addEventListener("message", onMessage);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
