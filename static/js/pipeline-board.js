// The opportunity board's drag and drop (SortableJS, vendored): dropping a card in
// another column posts the move; the server answers with the columns as they now
// are, so a refused move snaps back with its reason and the totals stay right.
(function () {
  "use strict";

  function needsReason(fromKind, toKind) {
    if (toKind === "lost" && fromKind !== "lost") return "Why was this deal lost?";
    if (fromKind === "lost" && toKind === "open") return "Why reopen this lost deal?";
    return null;
  }

  function post(board, card, stage, reason) {
    var body = new URLSearchParams();
    body.set("stage", stage);
    body.set("reason", reason || "");
    board.setAttribute("aria-busy", "true");
    return fetch(card.dataset.moveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": board.dataset.csrf, "HX-Request": "true" },
      body: body,
    }).then(function (response) {
      return response.text();
    }).then(function (html) {
      var holder = document.createElement("div");
      holder.innerHTML = html;
      var fresh = holder.querySelector("#board");
      if (fresh) {
        board.replaceWith(fresh);
        init(fresh);
      }
    }).catch(function () {
      window.location.reload();  // the network failed: show the board as it is
    });
  }

  function init(board) {
    if (!board || !window.Sortable) return;
    board.querySelectorAll("[data-testid=board-cards]").forEach(function (list) {
      window.Sortable.create(list, {
        group: "deals",
        draggable: ".board-card",
        filter: "a, details, select, input, button",
        preventOnFilter: false,
        animation: 120,
        onEnd: function (event) {
          if (event.from === event.to) return;
          var from = event.from.closest("[data-stage]");
          var to = event.to.closest("[data-stage]");
          var question = needsReason(from.dataset.kind, to.dataset.kind);
          var reason = question ? window.prompt(question) : "";
          if (question && !reason) {
            // Cancelled: put the card back where it was.
            event.from.insertBefore(event.item, event.from.children[event.oldIndex] || null);
            return;
          }
          post(board, event.item, to.dataset.stage, reason);
        },
      });
    });
  }

  init(document.querySelector("[data-sortable-board]"));
})();
