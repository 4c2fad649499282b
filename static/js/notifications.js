/* The notification bell: desktop notifications when the unread count rises.
 *
 * htmx polls the bell's count (templates/partials/notification_bell.html); after
 * each swap this reads the badge's data attributes (text the server escaped into
 * attributes, read back as plain text, never inserted as HTML) and, when a newer
 * unread notice than the last one seen in this tab session arrived and the member
 * allowed it, shows one desktop notification that opens the notice.
 */
(function () {
  "use strict";

  var SEEN_KEY = "leadflow.notifications.seen";
  var supported = "Notification" in window;

  function lastSeen() {
    try {
      var raw = window.sessionStorage.getItem(SEEN_KEY);
      return raw === null ? null : parseInt(raw, 10) || 0;
    } catch (e) {
      return null;
    }
  }

  function remember(id) {
    try {
      window.sessionStorage.setItem(SEEN_KEY, String(id));
    } catch (e) { /* private mode: just no memory across pages */ }
  }

  function plain(text) {
    // A desktop notification is text; some notification daemons read markup.
    return String(text || "").replace(/[<>&]/g, " ").slice(0, 200);
  }

  function show(badge) {
    var note = new window.Notification("LeadFlow", {
      body: plain(badge.dataset.newestText),
      tag: "leadflow-" + badge.dataset.newestId,
    });
    var url = badge.dataset.newestUrl || "";
    note.onclick = function () {
      window.focus();
      if (url.charAt(0) === "/" && url.charAt(1) !== "/") {
        window.location.assign(url);
      }
      note.close();
    };
  }

  function onCount(target) {
    var badge = target.querySelector("[data-unread]");
    if (!badge) {
      return;
    }
    var unread = parseInt(badge.dataset.unread, 10) || 0;
    var newest = parseInt(badge.dataset.newestId, 10) || 0;
    var seen = lastSeen();
    if (unread > 0 && newest > 0) {
      if (seen !== null && newest > seen && supported && window.Notification.permission === "granted") {
        show(badge);
      }
      if (seen === null || newest > seen) {
        remember(newest);
      }
    } else if (seen === null) {
      remember(0);
    }
    var bell = target.closest("[data-testid=notification-bell]");
    if (bell) {
      bell.setAttribute("title", unread ? unread + " unread notifications" : "Notifications");
    }
  }

  function refreshEnableButtons(root) {
    var buttons = (root || document).querySelectorAll("[data-notification-enable]");
    var status = document.querySelector("[data-notification-status]");
    buttons.forEach(function (button) {
      button.hidden = !supported || window.Notification.permission !== "default";
    });
    if (status && supported && window.Notification.permission !== "default") {
      status.textContent = window.Notification.permission === "granted"
        ? "Desktop notifications are on for this browser."
        : "Desktop notifications are blocked for this site in your browser's settings.";
    }
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target.matches("[data-testid=notification-count]")) {
      onCount(target);
    } else if (target.closest(".notification-panel")) {
      refreshEnableButtons(target);
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-notification-enable]");
    if (!button || !supported) {
      return;
    }
    event.preventDefault();
    var asked = window.Notification.requestPermission(function () { refreshEnableButtons(); });
    if (asked && asked.then) {
      asked.then(function () { refreshEnableButtons(); });
    }
  });

  refreshEnableButtons();
})();
