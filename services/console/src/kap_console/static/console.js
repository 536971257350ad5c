// The console's only script of its own: live updates over Server-Sent Events, the
// discharge countdowns, and announcing critical alerts to screen readers.
// Events carry ids only; the page fetches the changed card or list (htmx) through
// the normal, authorized routes.
(function () {
  "use strict";

  var inFlight = {};  // target -> the URL being fetched for it
  var dirty = {};  // target -> the URL to fetch once it may be

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
    inFlight[target] = url;
    // The target is also the request's source: htmx queues the requests of one source
    // element and keeps only the last queued one, so refreshes sharing the default source
    // (the body) dropped each other when a burst of changes named several cards.
    htmx.ajax("GET", url, { source: target, target: target, swap: "outerHTML" })
      .catch(function () { /* gone meanwhile, or the network failed: a reconnection reads again */ })
      .finally(function () {
        inFlight[target] = false;
        again(target);
      });
  }

  function again(target) {
    if (dirty[target]) { var url = dirty[target]; delete dirty[target]; refresh(url, target); }
  }

  // The last guard sits at the swap, not at the request: a refresh already on its way when
  // the prescriber began the assessment would otherwise wipe what she had ticked. And a
  // card replaced by the clinician's own action while a refresh is on its way is read
  // once more after it, as that refresh's answer then lands nowhere.
  function guardSwaps() {
    document.body.addEventListener("htmx:beforeSwap", function (e) {
      var target = e.detail.target;
      if (!target || !target.id) { return; }
      var selector = "#" + target.id;
      // A live refresh is its target's own request (see refresh); a clinician's action
      // comes from a form inside it.
      var live = e.detail.requestConfig.elt === target;
      if (live && e.detail.xhr.status >= 500) {
        retryLater(selector, e.detail.requestConfig.path);
      } else if (live && editing(selector)) {
        e.detail.shouldSwap = false;
        dirty[selector] = e.detail.requestConfig.path;
      } else if (!live && inFlight[selector]) {
        dirty[selector] = inFlight[selector];
      }
      if (live && e.detail.xhr.status < 500) { delete retryDelay[selector]; }
    });
  }

  // A refresh the console could not answer (a service it needs slow or down) is tried
  // again, 2 s later and then less and less often, until it is answered: no new change
  // may come to fetch that card again, and a stale card must not pass for a current one.
  var retryDelay = {};
  function retryLater(target, url) {
    var delay = Math.min((retryDelay[target] || 1000) * 2, 30000);
    retryDelay[target] = delay;
    setTimeout(function () { refresh(url, target); }, delay);
  }

  // What the page shows, read again: when the console cannot say which changes the page
  // missed (its stream resumed on another replica, after a restart, or from further back
  // than the console keeps), it sends "resync" instead of replaying them.
  function refreshAll() {
    var board = document.getElementById("board-wrap");
    if (board) { refresh(board.getAttribute("data-board-url"), "#board"); }
    var inbox = document.getElementById("inbox");
    if (inbox) { refresh(inbox.getAttribute("data-inbox-url"), "#inbox-items"); }
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

  // The stream opens from the position the page was rendered at, so a change made while
  // the page loaded is sent first; a reconnection resumes from the last message (the
  // browser sends its id as Last-Event-ID) and is sent what it missed meanwhile.
  function connect() {
    var status = document.getElementById("live-status");
    var since = document.body.getAttribute("data-live-since") || "";
    var source = new EventSource("/live" + (since ? "?since=" + encodeURIComponent(since) : ""));
    source.addEventListener("open", function () {
      status.textContent = "Live updates on";
      document.body.setAttribute("data-live-connected", "true");
    });
    source.addEventListener("change", function (message) {
      try { onChange(JSON.parse(message.data)); } catch (e) { /* a malformed message changes nothing */ }
    });
    source.addEventListener("resync", refreshAll);
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
      // The card's own change, and a board refresh that waited for it.
      Object.keys(dirty).forEach(again);
    });
    guardSwaps();
    if (document.body.getAttribute("data-live") === "on") { connect(); }
    setInterval(tickCountdowns, 1000);
  });
})();
