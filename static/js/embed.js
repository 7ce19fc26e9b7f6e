// Embedded in a partner's page: tell the parent what happens, as versioned messages to its exact origin only.
// Messages: ready, resize, order.created, order.status, order.completed, order.failed, close ({v: 1, type, ...}).
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
    var card = document.getElementById("order-status");
    if (!card || !card.dataset.orderId) { return; }
    var order = {orderId: card.dataset.orderId, status: card.dataset.status};
    if (reported[order.orderId] === order.status) { return; }
    reported[order.orderId] = order.status;
    post("order.status", order);
    if (card.dataset.outcome === "succeeded") { post("order.completed", order); }
    if (card.dataset.outcome === "failed") { post("order.failed", order); }
  }
  function reportPlaced() {
    var card = document.getElementById("order-status");
    var url = new URL(window.location.href);
    if (!card || url.searchParams.get("placed") !== "1") { return; }
    post("order.created", {orderId: card.dataset.orderId, status: card.dataset.status});
    url.searchParams.delete("placed");  // a reload is not a new order
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  var lastHeight = 0;
  function reportSize() {
    var height = Math.ceil(document.documentElement.scrollHeight);
    if (height !== lastHeight) { lastHeight = height; post("resize", {height: height}); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    post("ready", {});
    reportPlaced();
    reportStatus();
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
