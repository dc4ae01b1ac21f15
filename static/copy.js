/* Copy buttons, without inline script (the CSP allows only files from /static/).
   <button type="button" class="copy" data-copy-target="#bolt11">Copy</button>
   copies the target's value (textarea, input) or text to the clipboard and says "Copied". */
(function () {
  "use strict";

  function fallbackCopy(target, text) {
    // Older browsers, or a page that is not a secure context: select the text and copy it.
    if (typeof target.select === "function") {
      target.focus();
      target.select();
      try { return document.execCommand("copy"); } catch (e) { return false; }
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
    document.body.removeChild(area);
    return copied;
  }

  function say(button, word) {
    if (!button.dataset.copyLabel) button.dataset.copyLabel = button.textContent;
    button.textContent = word;
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(function () { button.textContent = button.dataset.copyLabel; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy-target]") : null;
    if (!button) return;
    var target = document.querySelector(button.getAttribute("data-copy-target"));
    if (!target) return;
    event.preventDefault();
    var text = ("value" in target && typeof target.value === "string" ? target.value : target.textContent).trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say(button, "Copied"); },
        function () { say(button, fallbackCopy(target, text) ? "Copied" : "Select and copy"); }
      );
    } else {
      say(button, fallbackCopy(target, text) ? "Copied" : "Select and copy");
    }
  });
}());
