// The chat page: lists the user's conversations and streams the assistant's answers from
// /api/v1/agent-chats. Authentication is the page's HttpOnly session cookie (same-origin
// requests only); unsafe requests carry the page's CSRF token. Model text is only ever
// inserted with textContent, never as HTML.
(function () {
  "use strict";

  var API = "/api/v1/agent-chats";
  var root = document.getElementById("chat");
  if (!root) return;

  var els = {
    sessions: document.getElementById("chat-sessions"),
    log: document.getElementById("chat-log"),
    empty: document.getElementById("chat-empty"),
    form: document.getElementById("chat-form"),
    input: document.getElementById("chat-input"),
    send: document.getElementById("chat-send"),
    title: document.getElementById("chat-title"),
    remove: document.getElementById("chat-delete"),
    newChat: document.getElementById("chat-new"),
  };
  var text = {
    you: root.dataset.textYou,
    assistant: root.dataset.textAssistant,
    tool: root.dataset.textTool,
    error: root.dataset.textError,
    untitled: root.dataset.textUntitled,
    none: root.dataset.textEmpty,
    remove: root.dataset.textDelete,
    fresh: els.title.textContent,
  };
  var lang = root.dataset.lang;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var state = { id: null, busy: false, titles: {} };

  function headers(extra) {
    var h = { "Accept-Language": lang, "X-CSRF-Token": csrf };
    for (var k in extra) h[k] = extra[k];
    return h;
  }

  async function problemText(response) {
    try {
      var body = await response.json();
      return body.detail || body.title || String(response.status);
    } catch (e) {
      return String(response.status);
    }
  }

  function format(template, key, value) {
    return template.split("{" + key + "}").join(value);
  }

  // -- rendering ---------------------------------------------------------------------------
  function clearLog() {
    els.log.querySelectorAll(".msg").forEach(function (n) { n.remove(); });
    els.empty.hidden = false;
  }

  function bubble(kind, content, label) {
    els.empty.hidden = true;
    var node = document.createElement("div");
    node.className = "msg msg-" + kind;
    if (label) {
      var tag = document.createElement("span");
      tag.className = "msg-label";
      tag.textContent = label;
      node.appendChild(tag);
    }
    var body = document.createElement("span");
    body.className = "msg-text";
    body.textContent = content || "";
    node.appendChild(body);
    els.log.appendChild(node);
    els.log.scrollTop = els.log.scrollHeight;
    return node;
  }

  function appendTo(node, delta) {
    node.querySelector(".msg-text").textContent += delta;
    els.log.scrollTop = els.log.scrollHeight;
  }

  function showTitle(title) {
    els.title.textContent = title || (state.id ? text.untitled : text.fresh);
    els.remove.hidden = !state.id;
  }

  function renderSessions(items) {
    els.sessions.textContent = "";
    if (!items.length) {
      var li = document.createElement("li");
      li.className = "muted";
      li.textContent = text.none;
      els.sessions.appendChild(li);
      return;
    }
    items.forEach(function (item) {
      state.titles[item.session_id] = item.title;
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = item.title || text.untitled;
      button.title = item.title || text.untitled;
      button.dataset.sessionId = item.session_id;
      if (item.session_id === state.id) button.setAttribute("aria-current", "true");
      button.addEventListener("click", function () { openChat(item.session_id); });
      li.appendChild(button);
      els.sessions.appendChild(li);
    });
  }

  // -- API calls ---------------------------------------------------------------------------
  async function loadSessions() {
    var response = await fetch(API, { headers: headers({ Accept: "application/json" }) });
    if (response.status === 401) return location.assign("/login?next=/chat");
    if (!response.ok) return;
    renderSessions(await response.json());
  }

  async function openChat(id) {
    if (state.busy) return;
    var response = await fetch(API + "/" + encodeURIComponent(id), {
      headers: headers({ Accept: "application/json" }),
    });
    if (!response.ok) {
      bubble("error", format(text.error, "error", await problemText(response)));
      return;
    }
    var chat = await response.json();
    state.id = chat.session_id;
    clearLog();
    chat.messages.forEach(function (m) {
      if (m.role === "user") bubble("user", m.content, text.you);
      else if (m.role === "assistant") bubble("assistant", m.content, text.assistant);
      else if (m.role === "tool_call") bubble("tool", format(text.tool, "name", m.tool_name || ""));
    });
    showTitle(chat.title);
    markCurrent();
  }

  function markCurrent() {
    els.sessions.querySelectorAll("button").forEach(function (b) {
      if (b.dataset.sessionId === state.id) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    });
  }

  function newChat() {
    if (state.busy) return;
    state.id = null;
    clearLog();
    showTitle(null);
    markCurrent();
    els.input.focus();
  }

  async function deleteChat() {
    if (!state.id || state.busy || !window.confirm(text.remove + "?")) return;
    var response = await fetch(API + "/" + encodeURIComponent(state.id), {
      method: "DELETE",
      headers: headers({ Accept: "application/json" }),
    });
    if (!response.ok && response.status !== 404) {
      bubble("error", format(text.error, "error", await problemText(response)));
      return;
    }
    state.id = null;
    newChat();
    await loadSessions();
  }

  function setBusy(busy) {
    state.busy = busy;
    els.send.disabled = busy;
    els.send.classList.toggle("is-busy", busy);
    els.input.readOnly = busy;
    els.log.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // Reads "event: <type>\ndata: <json>\n\n" frames from a fetch body as they arrive.
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
      var cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        var frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        var data = [];
        frame.split("\n").forEach(function (line) {
          if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (data.length) {
          try { onEvent(JSON.parse(data.join("\n"))); } catch (e) { /* not JSON: ignore */ }
        }
      }
    }
  }

  async function send(message) {
    setBusy(true);
    bubble("user", message, text.you);
    var answers = {};
    var current = null;
    try {
      var body = { message: message };
      if (state.id) body.session_id = state.id;
      var response = await fetch(API, {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        bubble("error", format(text.error, "error", await problemText(response)));
        return;
      }
      await readEvents(response, function (event) {
        if (event.type === "run_started" && event.session_id) {
          state.id = event.session_id;
          els.remove.hidden = false;
        } else if (event.type === "text_delta") {
          current = answers[event.message_id];
          if (!current) {
            current = answers[event.message_id] = bubble("assistant", "", text.assistant);
            current.classList.add("streaming");
          }
          appendTo(current, event.delta || "");
        } else if (event.type === "tool_call") {
          bubble("tool", format(text.tool, "name", event.tool_name || ""));
        } else if (event.type === "run_finished") {
          if (!Object.keys(answers).length && event.output) bubble("assistant", event.output, text.assistant);
        } else if (event.type === "run_error") {
          bubble("error", format(text.error, "error", event.error || ""));
        }
      });
    } catch (e) {
      bubble("error", format(text.error, "error", e.message || String(e)));
    } finally {
      Object.keys(answers).forEach(function (k) { answers[k].classList.remove("streaming"); });
      setBusy(false);
      await loadSessions();
      if (state.id) showTitle(state.titles[state.id]);
      markCurrent();
      els.input.focus();
    }
  }

  // -- wiring ------------------------------------------------------------------------------
  els.form.addEventListener("submit", function (event) {
    event.preventDefault();
    var message = els.input.value.trim();
    if (!message || state.busy) return;
    els.input.value = "";
    send(message);
  });
  els.input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.form.requestSubmit();
    }
  });
  els.newChat.addEventListener("click", newChat);
  els.remove.addEventListener("click", deleteChat);
  loadSessions();
})();
