// The console's only script of its own: live updates over Server-Sent Events, the
// discharge countdowns, and announcing critical alerts to screen readers.
// Events carry ids only; the page fetches the changed card or list (htmx) through
// the normal, authorized routes.
(function () {
  "use strict";

  var inFlight = {};
  var dirty = {};

  // One fetch per target at a time; a change arriving meanwhile fetches once more after.
  // A card whose stability assessment is being filled in is not replaced under the
  // prescriber's hands: the change waits until focus leaves the card (or it is submitted,
  // which swaps the card anyway).
  function editing(target) {
    var el = document.querySelector(target);
    return !!(el && el.querySelector("form[data-editing='true']"));
  }

  function refresh(url, target) {
    if (inFlight[target] || editing(target)) { dirty[target] = url; return; }
    inFlight[target] = true;
    htmx.ajax("GET", url, { target: target, swap: "outerHTML" }).finally(function () {
      inFlight[target] = false;
      if (dirty[target]) { var again = dirty[target]; delete dirty[target]; refresh(again, target); }
    });
  }

  var announced = {};
  function announceCritical(root) {
    var alerts = (root || document).querySelectorAll(".alert.sev-critical[data-alert]");
    alerts.forEach(function (el) {
      var id = el.getAttribute("data-alert");
      if (announced[id]) { return; }
      announced[id] = true;
      var card = el.closest(".card");
      var title = card ? card.querySelector("h2").textContent.trim() : "";
      document.getElementById("announcer").textContent =
        "Critical alert: " + title + ". " + el.querySelector("p").textContent.replace(/\s+/g, " ").trim();
    });
  }

  var SESSION_LIST_EVENTS = ["SessionScheduled", "SessionRescheduled", "SessionCancelled", "SessionCheckedIn"];

  function onChange(change) {
    var board = document.getElementById("board-wrap");
    if (board) {
      var card = change.session_id && document.getElementById("card-" + change.session_id);
      if (card) {
        refresh("/cards/" + change.session_id, "#card-" + change.session_id);
      } else if (SESSION_LIST_EVENTS.indexOf(change.event_type) >= 0) {
        refresh(board.getAttribute("data-board-url"), "#board");
      } else if (!change.session_id) {
        document.querySelectorAll('.card[data-patient="' + CSS.escape(change.patient_id) + '"]').forEach(function (el) {
          refresh("/cards/" + el.getAttribute("data-session"), "#" + el.id);
        });
      }
    }
    var inbox = document.getElementById("inbox");
    if (inbox && change.topic === "kap.notifications.events.v1") {
      refresh(inbox.getAttribute("data-inbox-url"), "#inbox-items");
    }
  }

  function connect() {
    var status = document.getElementById("live-status");
    var source = new EventSource("/live");
    source.addEventListener("open", function () {
      status.textContent = "Live updates on";
      document.body.setAttribute("data-live-connected", "true");
    });
    source.addEventListener("change", function (message) {
      try { onChange(JSON.parse(message.data)); } catch (e) { /* a malformed message changes nothing */ }
    });
    source.addEventListener("error", function () {
      status.textContent = "Live updates reconnecting";
      document.body.setAttribute("data-live-connected", "false");
    });
  }

  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll("time.countdown").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("datetime")) - now) / 1000);
      el.textContent = left <= 0 ? "now" : Math.floor(left / 60) + " min " + String(left % 60).padStart(2, "0") + " s";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    announceCritical(document);
    document.body.addEventListener("htmx:afterSwap", function () { announceCritical(document); });
    // Partials swapped in by outerHTML: htmx:afterSettle fires on the new element.
    document.body.addEventListener("htmx:afterSettle", function () { announceCritical(document); });
    document.body.addEventListener("change", function (e) {
      var form = e.target.closest && e.target.closest("form.sign-form");
      if (form) { form.setAttribute("data-editing", "true"); }
    });
    document.body.addEventListener("focusout", function (e) {
      var card = e.target.closest && e.target.closest(".card");
      if (!card || (e.relatedTarget && card.contains(e.relatedTarget))) { return; }
      var form = card.querySelector("form[data-editing='true']");
      if (!form) { return; }
      form.removeAttribute("data-editing");
      var target = "#" + card.id;
      if (dirty[target]) { var again = dirty[target]; delete dirty[target]; refresh(again, target); }
    });
    if (document.body.getAttribute("data-live") === "on") { connect(); }
    setInterval(tickCountdowns, 1000);
  });
})();
