/* Live status by server-sent events (marketplace/web/live.py): an element with data-live-src opens one
   EventSource; each "status" event replaces the element with the fragment sent. A fragment without
   data-live-src is final (paid, expired): the stream is closed. Without JavaScript the page's
   <noscript> refresh does the same, slower. */
(function () {
  "use strict";

  function watch(element) {
    if (!element || element._liveSource || !window.EventSource) return;
    var source = new EventSource(element.getAttribute("data-live-src"));
    element._liveSource = source;
    source.addEventListener("status", function (event) {
      var holder = document.createElement("div");
      holder.innerHTML = event.data;
      var next = holder.firstElementChild;
      var current = document.getElementById(element.id);
      if (!next || !current) { source.close(); return; }
      current.replaceWith(next);
      if (window.htmx) window.htmx.process(next);
      source.close();
      element._liveSource = null;
      if (next.hasAttribute("data-live-src")) watch(next);
    });
  }

  function scan(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("[data-live-src]").forEach(watch);
    if (root.hasAttribute && root.hasAttribute("data-live-src")) watch(root);
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  // A fragment swapped in by htmx (the demo wallet's answer) may carry its own live source.
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
}());
