// Passkeys on the SproutGate pages (web/passkey_pages.py): adding one on the account page,
// signing in with one, and one as the second step after a password.
// Options arrive in the WebAuthn Level 3 JSON serialization and are read with
// PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON; the credential
// goes back as credential.toJSON(). Browsers without those get the same done by hand (base64url).
// Every post carries the page's CSRF token; errors come back as problem+json whose "detail" is
// already in the page's language.
(function () {
  "use strict";

  var PKC = window.PublicKeyCredential;

  function supported() {
    return !!(PKC && navigator.credentials && navigator.credentials.create && window.isSecureContext);
  }

  // -- base64url <-> bytes ------------------------------------------------------------------------
  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
  }

  // -- the L3 JSON serialization, with a fallback -------------------------------------------------
  function creationOptions(json) {
    if (typeof PKC.parseCreationOptionsFromJSON === "function") return PKC.parseCreationOptionsFromJSON(json);
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: withIds(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    if (typeof PKC.parseRequestOptionsFromJSON === "function") return PKC.parseRequestOptionsFromJSON(json);
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      allowCredentials: withIds(json.allowCredentials),
    });
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    var r = credential.response;
    var response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  // -- talking to the pages -----------------------------------------------------------------------
  function csrfToken() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.getAttribute("content") : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(
        function (data) {
          if (!response.ok) throw { problem: data };
          return data;
        },
        function () {
          throw { problem: { status: response.status } };
        }
      );
    });
  }

  // What to tell the person: the server's words, or the browser's refusal in ours.
  function messageFor(box, error) {
    if (error && error.problem && error.problem.detail) return error.problem.detail;
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "AbortError") return box.getAttribute("data-msg-cancelled");
    if (name === "InvalidStateError" && box.hasAttribute("data-msg-exists")) return box.getAttribute("data-msg-exists");
    return box.getAttribute("data-msg-failed");
  }

  function showError(box, text) {
    var alert = box.querySelector("[data-passkey-error]");
    alert.textContent = text || "";
    alert.hidden = !text;
    if (text) box.setAttribute("data-passkey-state", "failed");
  }

  function busy(box, on) {
    box.querySelectorAll("button").forEach(function (button) {
      button.disabled = on;
    });
    if (on) box.setAttribute("aria-busy", "true");
    else box.removeAttribute("aria-busy");
  }

  function run(box, ceremony) {
    busy(box, true);
    showError(box, "");
    box.setAttribute("data-passkey-state", "working");
    return ceremony()
      .then(function (destination) {
        box.setAttribute("data-passkey-state", "done");
        window.location.assign(destination);
      })
      .catch(function (error) {
        busy(box, false);
        showError(box, messageFor(box, error));
      });
  }

  function formValue(selector) {
    var input = document.querySelector(selector);
    return input ? input.value : "";
  }

  // -- the three ceremonies -----------------------------------------------------------------------
  function signIn(box) {
    return run(box, function () {
      return post("/login/passkey/options")
        .then(function (options) {
          return navigator.credentials.get({ publicKey: requestOptions(options) });
        })
        .then(function (credential) {
          return post("/login/passkey/verify", {
            credential: credentialJSON(credential),
            redirect_to: formValue("form[action='/login'] input[name=redirect_to]"),
            next: formValue("form[action='/login'] input[name=next]"),
          });
        })
        .then(function (answer) {
          return answer.location;
        });
    });
  }

  function secondStep(box) {
    var token = formValue("form[action='/login/mfa'] input[name=mfa_token]");
    return run(box, function () {
      return post("/login/mfa/passkey/options", { mfa_token: token })
        .then(function (options) {
          return navigator.credentials.get({ publicKey: requestOptions(options) });
        })
        .then(function (credential) {
          return post("/login/mfa/passkey/verify", {
            mfa_token: token,
            credential: credentialJSON(credential),
            redirect_to: formValue("form[action='/login/mfa'] input[name=redirect_to]"),
            next: formValue("form[action='/login/mfa'] input[name=next]"),
          });
        })
        .then(function (answer) {
          return answer.location;
        });
    });
  }

  function register(form) {
    var name = form.querySelector("[name=passkey_name]");
    var password = form.querySelector("[name=passkey_password]");
    return run(form, function () {
      return post("/account/passkeys/registration/options", { password: password.value || null })
        .then(function (options) {
          return navigator.credentials.create({ publicKey: creationOptions(options) });
        })
        .then(function (credential) {
          return post("/account/passkeys/registration/verify", {
            name: name.value,
            credential: credentialJSON(credential),
          });
        })
        .then(function () {
          return "/account?notice=passkey_added#passkeys";
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!supported()) return;
    document.querySelectorAll("[data-passkey-unsupported]").forEach(function (note) {
      note.hidden = true;
    });
    document.querySelectorAll("[data-passkey]").forEach(function (box) {
      var kind = box.getAttribute("data-passkey");
      box.hidden = false;
      if (kind === "register") {
        box.addEventListener("submit", function (event) {
          event.preventDefault();
          register(box);
        });
        return;
      }
      box.querySelector("[data-passkey-start]").addEventListener("click", function () {
        if (kind === "sign-in") signIn(box);
        else secondStep(box);
      });
    });
  });
})();
