// Progressive enhancement for the SproutGate pages: every form works without this file.
// It only shows a busy state and blocks double submits while a request runs.
(function () {
  "use strict";

  function busyLabel() {
    return document.body.getAttribute("data-busy-label") || "…";
  }

  function setBusy(form, busy) {
    form.toggleAttribute("data-busy", busy);
    if (busy) form.setAttribute("aria-busy", "true");
    else form.removeAttribute("aria-busy");
    form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (button) {
      button.disabled = busy;
      button.classList.toggle("is-busy", busy);
      if (busy) {
        if (!button.hasAttribute("data-label")) button.setAttribute("data-label", button.textContent);
        if (!button.classList.contains("link-button")) button.textContent = busyLabel();
      } else if (button.hasAttribute("data-label")) {
        button.textContent = button.getAttribute("data-label");
        button.removeAttribute("data-label");
      }
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.hasAttribute("data-no-busy")) return;
    if (form.hasAttribute("data-busy")) {
      event.preventDefault();
      return;
    }
    // Disable after the browser has collected the form data (disabled controls are not sent).
    window.setTimeout(function () {
      if (!event.defaultPrevented) setBusy(form, true);
    }, 0);
  });

  // Coming back with the back button restores the page from cache: re-enable its forms.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-busy]").forEach(function (form) {
      setBusy(form, false);
    });
  });

  // Put the cursor in the first field with an error, else leave focus alone.
  document.addEventListener("DOMContentLoaded", function () {
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus();
  });
})();
