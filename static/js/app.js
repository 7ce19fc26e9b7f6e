// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // The tab shows the order's status: the status fragment carries its title, on load and after each swap.
  function titleFromStatus() {
    var status = document.getElementById("order-status");
    if (status && status.dataset.title) {
      document.title = status.dataset.title + document.title.slice(document.title.lastIndexOf(" · "));
    }
  }
  // After a failed submit the error summary takes focus, so keyboard and screen-reader users start there.
  function focusOnLoad() {
    var target = document.querySelector("[data-focus-on-load]");
    if (target) { target.focus(); }
  }
  // A failed htmx request shows the server's error fragment (or, offline, a sentence) in the page's error region.
  function showRequestError(event) {
    var region = document.getElementById("request-error");
    if (!region) { return; }
    var xhr = event.detail.xhr;
    if (event.type === "htmx:sendError" || !xhr || !xhr.responseText) {
      region.textContent = region.dataset.offlineText;
    } else {
      var parsed = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var fragment = parsed.getElementById("error");
      region.textContent = (fragment || parsed.body).textContent.trim();
    }
    region.hidden = false;
  }
  function hideRequestError(event) {
    var region = document.getElementById("request-error");
    if (region && event.detail.successful) { region.hidden = true; }
  }
  document.addEventListener("htmx:responseError", showRequestError);
  document.addEventListener("htmx:sendError", showRequestError);
  document.addEventListener("htmx:afterRequest", hideRequestError);
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
  // "Copy" beside a read-only text or an identifier: shown only where the clipboard can be used.
  function enableCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      if (!navigator.clipboard) { return; }
      button.hidden = false;
      button.onclick = function () {
        var source = document.getElementById(button.dataset.copy);
        var text = "value" in source ? source.value : source.textContent.trim();
        navigator.clipboard.writeText(text).then(function () {
          if (button.dataset.copiedText) { button.textContent = button.dataset.copiedText; }
        });
      };
    });
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.onclick = function () { window.print(); };
    });
  }
  // Exports stream a CSV; with script, the page shows the rows received so far, then saves the file.
  async function exportWithProgress(event) {
    var form = event.target.closest("[data-export-form]");
    if (!form || !window.fetch || !window.ReadableStream) { return; }
    event.preventDefault();
    var box = form.closest("[data-export]");
    var status = box.querySelector("[data-export-status]"), bar = box.querySelector("[data-export-progress]");
    var data = new URLSearchParams(new FormData(form));
    var get = form.method.toLowerCase() === "get";
    var response = await fetch(get ? form.action + "?" + data : form.action, {
      method: form.method, body: get ? undefined : data, credentials: "same-origin",
      headers: {"x-csrftoken": (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || ""}
    });
    if (!response.ok) { status.textContent = await response.text(); return; }
    var total = Number(response.headers.get("x-total-rows")) || 0, rows = -1, parts = [];
    var reader = response.body.getReader();
    bar.hidden = false; bar.max = Math.max(total, 1);
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) { break; }
      parts.push(chunk.value);
      for (var i = 0; i < chunk.value.length; i++) { if (chunk.value[i] === 10) { rows++; } }
      bar.value = Math.max(rows, 0);
      status.textContent = box.dataset.progressText.replace("%(rows)s", Math.max(rows, 0)).replace("%(total)s", total);
    }
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob(parts, {type: "text/csv"}));
    link.download = "cashout-orders.csv";
    document.body.appendChild(link); link.click(); link.remove();
    status.textContent = box.dataset.doneText.replace("%(rows)s", Math.max(rows, 0));
  }
  document.addEventListener("submit", exportWithProgress);
  // "/" jumps to the page's search box (support's console), unless the person is typing somewhere.
  document.addEventListener("keydown", function (event) {
    var box = document.querySelector("[data-slash-focus]");
    var field = event.target;
    var typing = field.isContentEditable || /^(TEXTAREA|SELECT)$/.test(field.tagName) ||
      (field.tagName === "INPUT" && !/^(checkbox|radio|button|submit|reset)$/.test(field.type));
    if (event.key !== "/" || !box || typing || event.ctrlKey || event.metaKey || event.altKey) { return; }
    event.preventDefault();
    box.focus();
    box.select();
  });
  // A part of a page redrawn on a timer (the activity charts) keeps the tables the reader opened, and their focus.
  var kept = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var region = event.detail.target;
    kept = {
      open: Array.prototype.map.call(region.querySelectorAll("details[open][id]"), function (d) { return d.id; }),
      focus: region.contains(document.activeElement) && document.activeElement.id || null
    };
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!kept) { return; }
    kept.open.forEach(function (id) { var details = document.getElementById(id); if (details) { details.open = true; } });
    var focused = kept.focus && document.getElementById(kept.focus);
    if (focused) { focused.focus(); }
    kept = null;
  });
  document.addEventListener("DOMContentLoaded", enableCopyButtons);
  document.addEventListener("htmx:afterSwap", enableCopyButtons);
  document.addEventListener("DOMContentLoaded", titleFromStatus);
  document.addEventListener("htmx:afterSettle", titleFromStatus);
  document.addEventListener("DOMContentLoaded", focusOnLoad);
})();
