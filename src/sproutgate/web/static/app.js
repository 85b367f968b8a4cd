// Progressive enhancement for the SproutGate pages: every form works without this file.
// It shows a busy state and blocks double submits while a request runs, folds the top bar into
// a menu on narrow screens and puts initials where an avatar image does not load.
// Loaded in <head> without defer: the "js" class is there before the first paint.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

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

  // The top bar's menu on narrow screens (app.css shows the button only there).
  function wireMenu() {
    var toggle = document.querySelector(".menu-toggle");
    var menu = document.getElementById("site-menu");
    if (!toggle || !menu) return;
    toggle.hidden = false;
    function setOpen(open) {
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      document.body.classList.toggle("menu-open", open);
    }
    toggle.addEventListener("click", function () {
      setOpen(toggle.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        setOpen(false);
        toggle.focus();
      }
    });
  }

  // An avatar that does not load gives way to the initials drawn beneath it (app.css).
  function showInitialsFor(img) {
    img.hidden = true;
    var frame = img.closest(".avatar-frame");
    if (frame) frame.classList.add("avatar-failed");
  }
  document.addEventListener(
    "error",
    function (event) {
      if (event.target instanceof HTMLImageElement && event.target.classList.contains("avatar")) {
        showInitialsFor(event.target);
      }
    },
    true
  );

  document.addEventListener("DOMContentLoaded", function () {
    wireMenu();
    // Images that failed before this listener existed.
    document.querySelectorAll("img.avatar").forEach(function (img) {
      if (img.complete) img.decode().catch(function () { showInitialsFor(img); });
    });
    // Put the cursor in the first field with an error, else leave focus alone.
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus();
  });
})();
