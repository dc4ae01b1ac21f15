/* Forms that show they are working, and destructive actions that ask once more (no inline script: CSP).
   <form data-confirm="Close this channel?"> asks before it is sent (plain or htmx form);
   every form's submit button says "Working…" (the body's data-working-text) and is disabled until the
   answer comes (a new page, or htmx's afterRequest). */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
      event.stopPropagation();
      return;
    }
    var button = event.submitter || form.querySelector("button[type=submit], button:not([type])");
    if (!button || button.classList.contains("link")) return;
    form.setAttribute("aria-busy", "true");
    // After this tick: a disabled button would not be sent with the form.
    setTimeout(function () {
      if (!button.dataset.idleLabel) button.dataset.idleLabel = button.textContent;
      button.textContent = document.body.getAttribute("data-working-text") || "Working…";
      button.disabled = true;
    }, 0);
  }, true);

  function idle(form) {
    form.removeAttribute("aria-busy");
    form.querySelectorAll("button[data-idle-label]").forEach(function (button) {
      button.textContent = button.dataset.idleLabel;
      button.disabled = false;
      delete button.dataset.idleLabel;
    });
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target && event.target.closest ? event.target.closest("form") : null;
    if (form) idle(form);
  });
  // Back to a page kept by the browser (bfcache): its buttons must work again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[aria-busy]").forEach(idle);
  });
}());
