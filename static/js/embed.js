// Embedded in a partner's page: tell the parent what happens, as versioned messages to its exact origin only.
// Messages: ready, resize, order.created, order.status, order.completed, order.failed, close ({v: 1, type, ...}).
// `ready` once per frame (the first page after the launch), `resize` the content's own height (docs/embedding.md).
// A browser message is no proof of payment: partners act on our signed webhooks, not on these.
(function () {
  "use strict";
  var origin = document.body && document.body.dataset.parentOrigin;
  if (!origin || window.parent === window) { return; }  // opened on its own (redirect mode): nobody to tell
  function post(type, details) {
    var message = {v: 1, type: type};
    Object.keys(details || {}).forEach(function (key) { message[key] = details[key]; });
    window.parent.postMessage(message, origin);
  }
  var reported = {};
  function reportStatus() {
    // The server names the event (webapp/embed/events.py, the same rule as the webhooks): one per status.
    var card = document.getElementById("order-status");
    if (!card || !card.dataset.orderId || !card.dataset.partnerEvent) { return; }
    var order = {orderId: card.dataset.orderId, status: card.dataset.status};
    if (reported[order.orderId] === order.status) { return; }
    reported[order.orderId] = order.status;
    post(card.dataset.partnerEvent, order);
  }
  function once(flag) {
    // Whether this address carries `flag=1`, which is then dropped: a reload is not a new launch or order.
    var url = new URL(window.location.href);
    if (url.searchParams.get(flag) !== "1") { return false; }
    url.searchParams.delete(flag);
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    return true;
  }
  var lastHeight = 0;
  function reportSize() {
    // The document's own height, not the frame's: embedded pages do not stretch to the frame (app.css), so a
    // parent that sizes the frame to it settles instead of growing it again and again.
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== lastHeight) { lastHeight = height; post("resize", {height: height}); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (once("launched")) { post("ready", {}); }
    reportStatus();
    once("placed");
    reportSize();
    if (window.ResizeObserver) { new ResizeObserver(reportSize).observe(document.body); }
    document.querySelectorAll("[data-embed-close]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { post("close", {}); });
    });
  });
  document.addEventListener("htmx:afterSwap", reportStatus);
  document.addEventListener("htmx:sseMessage", function () { setTimeout(reportStatus, 0); });
})();
