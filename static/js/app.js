// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (element) {
      var left = Math.max(0, Math.round((Date.parse(element.dataset.countdown) - Date.now()) / 1000));
      var minutes = Math.floor(left / 60), seconds = left % 60;
      element.textContent = minutes + ":" + String(seconds).padStart(2, "0");
    });
  }
  // Inline validation swaps only the hints and errors; mark each input invalid or valid to match them.
  function markInvalidFields() {
    document.querySelectorAll(".feedback[id$='-feedback']").forEach(function (feedback) {
      var name = feedback.id.slice(0, -"-feedback".length);
      var input = document.getElementById(name);
      if (!input) { return; }
      if (document.getElementById(name + "-error")) { input.setAttribute("aria-invalid", "true"); }
      else { input.removeAttribute("aria-invalid"); }
    });
  }
  document.addEventListener("htmx:oobAfterSwap", function () { setTimeout(markInvalidFields, 0); });
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
})();
