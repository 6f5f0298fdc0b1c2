/*
 * Switchboard web widget: one script tag on any site.
 *
 *   <script src="https://support.example.com/widget.js" data-key="pk_..." async></script>
 *
 * Data attributes: data-key (widget API key, required), data-user-token (the signed identity token of a
 * signed-in user, sent as X-End-User-Token; without it the widget is anonymous, X-Anonymous-ID), data-api (gateway URL; default: where this script came from), data-lang ("en" | "ru"; default from
 * navigator.language), data-color (accent colour), data-position ("right" | "left"), data-title,
 * data-greeting, data-strings (JSON object overriding any UI string), data-open ("true": open on load),
 * data-z-index.
 *
 * Talks to the gateway's public API: POST /v1/conversations, POST /v1/conversations/{id}/messages (SSE),
 * GET /v1/conversations/{id}?after=<message id>, POST .../feedback, POST .../handoff.
 * Everything lives in a shadow root so the host page's CSS and this widget cannot affect each other.
 * No framework, no build step.
 */
(function () {
  "use strict";

  var script =
    document.currentScript ||
    document.querySelector('script[src*="widget.js"][data-key]');
  if (!script) return;
  var ds = script.dataset || {};
  if (!ds.key) {
    if (window.console) window.console.error("Switchboard widget: the script tag needs data-key.");
    return;
  }
  if (window.__switchboardWidget) return; // loaded twice on one page
  window.__switchboardWidget = true;

  var STRINGS = {
    en: {
      title: "Support",
      greeting: "Hi! Ask me anything about our product.",
      launcherOpen: "Open support chat",
      launcherClose: "Close support chat",
      close: "Close chat",
      newConversation: "New conversation",
      newConversationDone: "Started a new conversation.",
      placeholder: "Type your question…",
      inputLabel: "Your message",
      send: "Send",
      talkToPerson: "Talk to a person",
      you: "You",
      assistant: "Assistant",
      operator: "Support agent",
      typing: "The assistant is typing…",
      sources: "Sources",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      thanks: "Thanks for the feedback!",
      handoffRequested: "We're connecting you to a person. Please stay on this page — they'll reply here.",
      humanJoined: "A person has joined the conversation.",
      botBack: "You're back with the assistant.",
      resolved: "This conversation was marked as resolved.",
      rateLimited: "You're sending messages too quickly. Please wait {seconds} seconds and try again.",
      rateLimitedShort: "You're sending messages too quickly. Please wait a moment and try again.",
      offline: "You're offline. Check your internet connection and try again.",
      unavailable: "The support service is unavailable right now. Please try again in a few minutes.",
      forbidden: "This chat isn't enabled for this website, so it can't be used here.",
      unauthorized: "This chat is not set up correctly (invalid key). Please contact the site owner.",
      identity: "We couldn't confirm who you are. Please reload the page or sign in again.",
      tooLong: "Your message is too long. Please shorten it and try again.",
      generic: "Something went wrong. Please try again.",
      lookingUp: "Looking that up…",
      retry: "Try again",
      unread: "{count} new",
    },
    ru: {
      title: "Поддержка",
      greeting: "Здравствуйте! Задайте любой вопрос о нашем продукте.",
      launcherOpen: "Открыть чат поддержки",
      launcherClose: "Закрыть чат поддержки",
      close: "Закрыть чат",
      newConversation: "Новый диалог",
      newConversationDone: "Начат новый диалог.",
      placeholder: "Введите вопрос…",
      inputLabel: "Ваше сообщение",
      send: "Отправить",
      talkToPerson: "Позвать человека",
      you: "Вы",
      assistant: "Ассистент",
      operator: "Сотрудник поддержки",
      typing: "Ассистент печатает…",
      sources: "Источники",
      helpful: "Полезно",
      notHelpful: "Бесполезно",
      thanks: "Спасибо за отзыв!",
      handoffRequested: "Подключаем сотрудника поддержки. Не закрывайте страницу — ответ появится здесь.",
      humanJoined: "К разговору подключился сотрудник поддержки.",
      botBack: "Снова отвечает ассистент.",
      resolved: "Этот диалог отмечен как решённый.",
      rateLimited: "Вы отправляете сообщения слишком часто. Подождите {seconds} с и попробуйте снова.",
      rateLimitedShort: "Вы отправляете сообщения слишком часто. Подождите немного и попробуйте снова.",
      offline: "Нет подключения к интернету. Проверьте соединение и попробуйте снова.",
      unavailable: "Служба поддержки сейчас недоступна. Попробуйте через несколько минут.",
      forbidden: "Этот чат не подключён для этого сайта, поэтому здесь им нельзя пользоваться.",
      unauthorized: "Чат настроен неправильно (неверный ключ). Сообщите владельцу сайта.",
      identity: "Не удалось подтвердить, кто вы. Обновите страницу или войдите снова.",
      tooLong: "Сообщение слишком длинное. Сократите его и попробуйте снова.",
      generic: "Что-то пошло не так. Попробуйте ещё раз.",
      lookingUp: "Ищу информацию…",
      retry: "Повторить",
      unread: "новых: {count}",
    },
  };

  function pickLang() {
    var wanted = (ds.lang || navigator.language || "en").toLowerCase().slice(0, 2);
    return STRINGS[wanted] ? wanted : "en";
  }
  var lang = pickLang();
  var t = Object.assign({}, STRINGS[lang]);
  if (ds.title) t.title = ds.title;
  if (ds.greeting) t.greeting = ds.greeting;
  var customStrings = null;
  if (ds.strings) {
    try {
      customStrings = JSON.parse(ds.strings);
      Object.assign(t, customStrings);
    } catch (e) {
      if (window.console) window.console.warn("Switchboard widget: data-strings is not valid JSON.");
    }
  }
  function fmt(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, name) {
      return values && name in values ? String(values[name]) : "";
    });
  }

  var apiBase = (ds.api || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var key = ds.key;
  var userToken = ds.userToken || "";
  var POLL_MS = Number(ds.pollMs) > 0 ? Number(ds.pollMs) : 3000;

  // ---------- persistence ----------
  var storageKey = "switchboard.widget." + key;
  function loadState() {
    try {
      var raw = window.localStorage.getItem(storageKey);
      if (raw) return JSON.parse(raw);
    } catch (e) {
      /* storage disabled or corrupt: start fresh */
    }
    return {};
  }
  var state = loadState();
  state.messages = Array.isArray(state.messages) ? state.messages : [];
  state.notices = Array.isArray(state.notices) ? state.notices : [];
  if (!state.anonymousId) state.anonymousId = randomId("anon");
  if (state.endUser && state.endUser !== endUserId()) {
    // Someone else signed in on this browser: their conversation is not this user's.
    state.conversationId = null;
    state.messages = [];
    state.notices = [];
    state.owner = "bot";
  }
  function saveState() {
    try {
      window.localStorage.setItem(
        storageKey,
        JSON.stringify({
          anonymousId: state.anonymousId,
          endUser: endUserId(),
          conversationId: state.conversationId || null,
          owner: state.owner || "bot",
          waitingForHuman: !!state.waitingForHuman,
          humanJoined: !!state.humanJoined,
          resolved: !!state.resolved,
          messages: state.messages.slice(-200),
          notices: state.notices.slice(-50),
          open: !!state.open,
          unread: state.unread || 0,
        })
      );
    } catch (e) {
      /* quota or disabled storage: the conversation simply won't survive a reload */
    }
  }
  function randomId(prefix) {
    // 128 random bits from the platform's CSPRNG: getRandomValues works on plain-HTTP pages too
    // (randomUUID needs a secure context). An anonymous id is the visitor's only key to their
    // conversation, so there is no guessable fallback.
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var hex = "";
    for (var i = 0; i < bytes.length; i++) hex += (bytes[i] + 256).toString(16).slice(1);
    return prefix + "_" + hex;
  }

  // ---------- API ----------
  function ApiError(kind, message, retryAfter, code) {
    this.kind = kind; // rate_limited | offline | unavailable | forbidden | unauthorized | too_long | not_found | generic
    this.message = message;
    this.retryAfter = retryAfter;
    this.code = code;
  }
  function headers(extra) {
    var h = { Authorization: "Bearer " + key };
    if (userToken) h["X-End-User-Token"] = userToken;
    else h["X-Anonymous-ID"] = state.anonymousId;
    return Object.assign(h, extra || {});
  }
  // Who the gateway will say this user is (X-End-User-ID), which a new conversation must name:
  // the signed token's subject, or the anonymous id with the gateway's "anon:" prefix.
  function endUserId() {
    if (userToken) {
      try {
        var part = userToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
        var bytes = Uint8Array.from(atob(part + "===".slice((part.length + 3) % 4)), function (c) {
          return c.charCodeAt(0);
        });
        var sub = JSON.parse(new TextDecoder().decode(bytes)).sub;
        if (sub) return String(sub);
      } catch (e) {
        /* malformed token: the gateway will refuse it with a clear 401 */
      }
    }
    return "anon:" + state.anonymousId;
  }
  async function errorFromResponse(response) {
    var body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    var err = (body && body.error) || {};
    var status = response.status;
    var retry = Number(response.headers.get("Retry-After"));
    if (status === 429) return new ApiError("rate_limited", err.message, retry > 0 ? retry : null, err.code);
    if (status === 403) return new ApiError("forbidden", err.message, null, err.code);
    if (status === 401) return new ApiError(userToken ? "identity" : "unauthorized", err.message, null, err.code);
    if (status === 404) return new ApiError("not_found", err.message, null, err.code);
    if (status === 413 || (status === 422 && err.code === "payload_too_large"))
      return new ApiError("too_long", err.message, null, err.code);
    if (status === 502 || status === 503 || status === 504)
      return new ApiError("unavailable", err.message, retry > 0 ? retry : null, err.code);
    return new ApiError("generic", err.message, null, err.code);
  }
  async function request(method, path, body, extraHeaders) {
    var init = { method: method, headers: headers(extraHeaders), mode: "cors", credentials: "omit" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    var response;
    try {
      response = await fetch(apiBase + path, init);
    } catch (e) {
      throw new ApiError(await networkFailureKind(), String(e));
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }
  // A fetch that fails outright is offline, a gateway that is down, or an answer the browser hid from us:
  // the gateway refuses a disallowed origin (or an unknown key) without CORS headers. A no-cors probe
  // tells the last case apart: the gateway answers it, so it is up and refused this page.
  async function networkFailureKind() {
    if (navigator.onLine === false) return "offline";
    try {
      await fetch(apiBase + "/healthz", { mode: "no-cors", cache: "no-store", credentials: "omit" });
      return "forbidden";
    } catch (e) {
      return navigator.onLine === false ? "offline" : "unavailable";
    }
  }

  async function requestJson(method, path, body) {
    var response = await request(method, path, body);
    if (response.status === 204) return null;
    var text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  // Reads `event: <type>` / `data: <json>` blocks from a fetch body and hands each packet to onPacket.
  async function readEventStream(response, onPacket) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
      var boundary;
      while ((boundary = buffer.indexOf("\n\n")) >= 0) {
        var block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        var eventType = "message";
        var data = [];
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) eventType = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (!data.length) continue;
        var packet;
        try {
          packet = JSON.parse(data.join("\n"));
        } catch (e) {
          continue;
        }
        if (!packet.type) packet.type = eventType;
        onPacket(packet);
      }
    }
  }

  // ---------- DOM ----------
  var host = document.createElement("div");
  host.setAttribute("data-switchboard-widget", "");
  var root = host.attachShadow({ mode: "open" });
  var accent = ds.color && window.CSS && CSS.supports("color", ds.color) ? ds.color : "#2357d9";
  var side = ds.position === "left" ? "left" : "right";
  var zIndex = /^\d+$/.test(ds.zIndex || "") ? ds.zIndex : "2147483000";

  var style = document.createElement("style");
  style.textContent =
    ":host{all:initial;--sb-accent:" + accent + ";--sb-bg:#fff;--sb-fg:#1b1f24;--sb-muted:#5b6470;" +
    "--sb-border:#d9dde3;--sb-bubble:#f1f3f6;--sb-error-bg:#fdecec;--sb-error-fg:#8a1c1c;" +
    "--sb-notice-bg:#eef4ff}" +
    // Typography sits on the widget's own boxes: the host page's rules for its <div> reach the shadow host.
    ".panel,.launcher{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','DejaVu Sans'," +
    "Arial,sans-serif;font-size:15px;line-height:1.45;color:var(--sb-fg);text-align:left;letter-spacing:normal}" +
    "*{box-sizing:border-box}" +
    ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:" + zIndex + ";width:56px;height:56px;" +
    "border-radius:50%;border:none;background:var(--sb-accent);color:#fff;cursor:pointer;display:flex;" +
    "align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.25);transition:transform .15s}" +
    ".launcher:hover{transform:scale(1.05)}" +
    ".launcher svg{width:28px;height:28px;fill:currentColor}" +
    ".badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;box-sizing:border-box;" +
    "border-radius:10px;background:#d93025;color:#fff;font:600 12px/20px system-ui,sans-serif;text-align:center;" +
    "box-shadow:0 0 0 2px #fff}" +
    "button:focus-visible,textarea:focus-visible,a:focus-visible{outline:3px solid var(--sb-accent);" +
    "outline-offset:2px}" +
    ".launcher:focus-visible{outline-color:#111}" +
    ".panel{position:fixed;bottom:88px;" + side + ":20px;z-index:" + zIndex + ";width:380px;" +
    "height:min(600px,calc(100vh - 110px));background:var(--sb-bg);border:1px solid var(--sb-border);" +
    "border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.2);display:flex;flex-direction:column;" +
    "overflow:hidden;opacity:1;transform:none;transition:opacity .15s,transform .15s}" +
    ".panel[hidden]{display:none}" +
    "header{display:flex;align-items:center;gap:4px;padding:10px 8px 10px 14px;background:var(--sb-accent);" +
    "color:#fff}" +
    "header h2{flex:1;margin:0;font-size:16px;font-weight:600;overflow:hidden;text-overflow:ellipsis;" +
    "white-space:nowrap}" +
    ".icon-btn{background:transparent;border:none;color:inherit;cursor:pointer;border-radius:6px;" +
    "padding:6px 8px;font:inherit;font-size:13px;min-height:36px}" +
    ".icon-btn:hover{background:rgba(255,255,255,.18)}" +
    "header .icon-btn:focus-visible{outline-color:#fff}" +
    ".status{padding:6px 14px;font-size:13px;background:var(--sb-notice-bg);color:var(--sb-fg);" +
    "border-bottom:1px solid var(--sb-border)}" +
    ".status[hidden],.error[hidden]{display:none}" +
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px}" +
    ".msg{max-width:88%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word;" +
    "overflow-wrap:anywhere}" +
    ".msg .who{display:block;font-size:12px;color:var(--sb-muted);margin-bottom:2px}" +
    ".msg.user{align-self:flex-end;background:var(--sb-accent);color:#fff}" +
    ".msg.user .who{color:rgba(255,255,255,.85)}" +
    ".msg.assistant,.msg.operator{align-self:flex-start;background:var(--sb-bubble)}" +
    ".msg.operator{border-left:4px solid var(--sb-accent)}" +
    ".notice{align-self:center;font-size:13px;color:var(--sb-muted);text-align:center;padding:2px 8px}" +
    ".sources{margin:6px 0 0;padding:0;list-style:none;font-size:13px;white-space:normal}" +
    ".sources-title{font-size:12px;color:var(--sb-muted);margin-top:6px}" +
    ".sources a,.text a{color:var(--sb-accent);text-decoration:underline}" +
    ".msg.user .text a{color:#fff}" +
    ".cite{font-size:.8em;vertical-align:super;line-height:0;text-decoration:none!important;margin-left:1px}" +
    ".text code{font-family:ui-monospace,monospace;font-size:.9em;background:rgba(0,0,0,.06);padding:0 3px;" +
    "border-radius:4px}" +
    ".feedback{display:flex;gap:6px;align-items:center;margin-top:6px;font-size:12px;color:var(--sb-muted);" +
    "white-space:normal}" +
    ".feedback button{border:1px solid var(--sb-border);background:#fff;border-radius:6px;cursor:pointer;" +
    "min-width:36px;min-height:32px;color:var(--sb-muted);display:inline-flex;align-items:center;" +
    "justify-content:center}" +
    ".feedback .thumb-down svg{transform:rotate(180deg)}" +
    ".feedback button[aria-pressed=true]{background:var(--sb-accent);color:#fff;border-color:var(--sb-accent)}" +
    ".typing{align-self:flex-start;font-size:13px;color:var(--sb-muted);font-style:italic}" +
    ".typing[hidden]{display:none}" +
    ".dots span{display:inline-block;animation:sb-blink 1.2s infinite}" +
    ".dots span:nth-child(2){animation-delay:.2s}.dots span:nth-child(3){animation-delay:.4s}" +
    "@keyframes sb-blink{0%,80%,100%{opacity:.2}40%{opacity:1}}" +
    ".error{margin:0 14px 8px;padding:8px 10px;border-radius:8px;background:var(--sb-error-bg);" +
    "color:var(--sb-error-fg);font-size:13px}" +
    "form{display:flex;gap:8px;padding:10px 14px 6px;border-top:1px solid var(--sb-border)}" +
    "textarea{flex:1;resize:none;border:1px solid var(--sb-border);border-radius:10px;padding:8px 10px;" +
    "font:inherit;min-height:42px;max-height:120px;color:var(--sb-fg);background:#fff}" +
    ".send{background:var(--sb-accent);color:#fff;border:none;border-radius:10px;padding:0 14px;" +
    "cursor:pointer;font:inherit;font-weight:600;min-height:42px}" +
    ".send:disabled{opacity:.5;cursor:not-allowed}" +
    ".actions{display:flex;justify-content:space-between;padding:0 14px 10px}" +
    ".link-btn{background:none;border:none;color:var(--sb-accent);cursor:pointer;font:inherit;font-size:13px;" +
    "padding:6px 2px;text-decoration:underline;min-height:32px}" +
    ".sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}" +
    "@media (max-width:480px){.panel{left:0;right:0;bottom:0;top:0;width:100%;height:100%;border-radius:0;" +
    "border:none}textarea{font-size:16px}.launcher{bottom:14px;" + side + ":14px}.panel:not([hidden])~.launcher{display:none}}" +
    "@media (prefers-reduced-motion:reduce){*{transition:none!important;animation:none!important}}";
  root.appendChild(style);

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "className") node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var panelId = "sb-panel";
  var panel = el("section", {
    className: "panel",
    id: panelId,
    role: "dialog",
    "aria-modal": "false",
    "aria-labelledby": "sb-title",
    hidden: "",
  });
  var header = el("header");
  var title = el("h2", { id: "sb-title" }, t.title);
  var newBtn = el("button", { type: "button", className: "icon-btn new-conversation" }, t.newConversation);
  var closeBtn = el("button", { type: "button", className: "icon-btn close", "aria-label": t.close }, "✕");
  header.append(title, newBtn, closeBtn);

  var statusBar = el("div", { className: "status", role: "status", "aria-live": "polite", hidden: "" });
  var log = el("div", { className: "log", role: "log", "aria-live": "polite", "aria-label": t.title });
  var typing = el("div", { className: "typing", hidden: "", "aria-live": "polite" });
  typing.append(
    document.createTextNode(t.typing + " "),
    (function () {
      var dots = el("span", { className: "dots", "aria-hidden": "true" });
      dots.append(el("span", {}, "•"), el("span", {}, "•"), el("span", {}, "•"));
      return dots;
    })()
  );
  var errorBox = el("div", { className: "error", role: "alert", hidden: "" });

  var form = el("form", { novalidate: "" });
  var input = el("textarea", {
    id: "sb-input",
    rows: "1",
    maxlength: "4000",
    placeholder: t.placeholder,
    "aria-label": t.inputLabel,
  });
  var sendBtn = el("button", { type: "submit", className: "send" }, t.send);
  form.append(input, sendBtn);

  var actions = el("div", { className: "actions" });
  var humanBtn = el("button", { type: "button", className: "link-btn talk-to-person" }, t.talkToPerson);
  actions.append(humanBtn);

  panel.append(header, statusBar, log, errorBox, form, actions);

  var launcher = el("button", {
    type: "button",
    className: "launcher",
    "aria-label": t.launcherOpen,
    "aria-expanded": "false",
    "aria-controls": panelId,
  });
  launcher.innerHTML =
    '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 ' +
    '2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  var badge = el("span", { className: "badge", "aria-hidden": "true" });
  badge.hidden = true;
  launcher.append(badge);
  root.append(panel, launcher);

  // While the panel is closed, replies that arrive (a person answering) are counted on the launcher.
  function renderUnread() {
    var count = state.open ? 0 : state.unread || 0;
    badge.textContent = count > 9 ? "9+" : String(count);
    badge.hidden = !count;
    var label = state.open ? t.launcherClose : t.launcherOpen;
    launcher.setAttribute("aria-label", count ? label + " (" + fmt(t.unread, { count: count }) + ")" : label);
  }

  // ---------- rendering ----------
  var messageNodes = {}; // message id -> element

  function renderGreeting() {
    if (!t.greeting) return;
    var node = el("div", { className: "msg assistant greeting" });
    node.append(el("span", { className: "who" }, t.assistant), document.createTextNode(t.greeting));
    log.append(node);
  }

  // Answers carry a little Markdown (**bold**, *italic*, `code`, [text](https://…)) and citation markers
  // [n]. Everything is escaped first, so the only markup is what these rules add.
  function escapeHtml(text) {
    return text.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function httpUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url);
  }
  function renderText(node, text, citations) {
    var byIndex = {};
    (citations || []).forEach(function (c) {
      byIndex[c.index] = c;
    });
    var html = escapeHtml(text || "")
      .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|[^*\w])\*([^*\n]+)\*(?!\w)/g, "$1<em>$2</em>")
      .replace(/`([^`\n]+)`/g, "<code>$1</code>")
      .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>')
      .replace(/\[(\d{1,2})\]/g, function (marker, n) {
        var c = byIndex[n];
        if (c && httpUrl(c.url)) {
          return (
            '<a class="cite" href="' + escapeHtml(c.url) + '" target="_blank" rel="noopener noreferrer" title="' +
            escapeHtml(c.title || "") + '">' + marker + "</a>"
          );
        }
        return '<span class="cite">' + marker + "</span>";
      });
    node.innerHTML = html;
  }

  function renderCitations(container, citations) {
    var old = container.querySelector(".sources-block");
    if (old) old.remove();
    if (!citations || !citations.length) return;
    var block = el("div", { className: "sources-block" });
    block.append(el("div", { className: "sources-title" }, t.sources));
    var list = el("ol", { className: "sources", "aria-label": t.sources });
    citations
      .slice()
      .sort(function (a, b) {
        return a.index - b.index;
      })
      .forEach(function (c) {
        var item = el("li");
        var label = "[" + c.index + "] " + (c.title || c.url || c.document_id);
        if (httpUrl(c.url)) {
          var a = el("a", { href: c.url, target: "_blank", rel: "noopener noreferrer" }, label);
          if (c.snippet) a.title = c.snippet;
          item.append(a);
        } else {
          item.textContent = label;
        }
        list.append(item);
      });
    block.append(list);
    container.append(block);
  }

  // A thumb drawn as SVG (no emoji font needed); the "down" button shows it flipped by CSS.
  var THUMB_SVG =
    '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false"><path ' +
    'fill="currentColor" d="M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 ' +
    '6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z"/></svg>';

  function renderFeedback(container, message) {
    if (!message.id || message.role !== "assistant" || container.querySelector(".feedback")) return;
    var row = el("div", { className: "feedback", role: "group", "aria-label": t.helpful + " / " + t.notHelpful });
    var up = el("button", { type: "button", className: "thumb-up", "aria-label": t.helpful, title: t.helpful });
    var down = el("button", {
      type: "button",
      className: "thumb-down",
      "aria-label": t.notHelpful,
      title: t.notHelpful,
    });
    up.innerHTML = THUMB_SVG;
    down.innerHTML = THUMB_SVG;
    var thanks = el("span", { className: "feedback-thanks", "aria-live": "polite" });
    function paint() {
      up.setAttribute("aria-pressed", message.rating === "up" ? "true" : "false");
      down.setAttribute("aria-pressed", message.rating === "down" ? "true" : "false");
    }
    function rate(rating) {
      var previous = message.rating;
      message.rating = rating;
      paint();
      requestJson("POST", "/v1/conversations/" + encodeURIComponent(state.conversationId) + "/feedback", {
        message_id: message.id,
        rating: rating,
      })
        .then(function () {
          thanks.textContent = t.thanks;
          saveState();
        })
        .catch(function (err) {
          message.rating = previous;
          paint();
          showError(err);
        });
    }
    up.addEventListener("click", function () {
      rate("up");
    });
    down.addEventListener("click", function () {
      rate("down");
    });
    paint();
    row.append(up, down, thanks);
    container.append(row);
  }

  function renderMessage(message) {
    if (message.greeting) return null; // the tenant's greeting opens the log already
    var node = (message.id && messageNodes[message.id]) || null;
    if (!node) {
      node = el("div", { className: "msg " + message.role });
      var who = message.role === "user" ? t.you : message.role === "operator" ? t.operator : t.assistant;
      node.append(el("span", { className: "who" }, who), el("span", { className: "text" }));
      if (message.role === "system") node.className = "notice";
      log.append(node);
      if (message.id) messageNodes[message.id] = node;
    }
    if (message.role === "system") {
      node.textContent = message.text;
    } else {
      if (message.role === "user") node.querySelector(".text").textContent = message.text;
      else renderText(node.querySelector(".text"), message.text, message.citations);
      renderCitations(node, message.citations);
      renderFeedback(node, message);
    }
    scrollToEnd();
    return node;
  }

  function renderNotice(text) {
    var node = el("div", { className: "notice", role: "status" }, text);
    log.append(node);
    scrollToEnd();
  }
  function addNotice(text) {
    state.notices.push({ text: text, after: state.messages.length });
    renderNotice(text);
    saveState();
  }

  function renderAll() {
    log.textContent = "";
    messageNodes = {};
    renderGreeting();
    var notices = state.notices.slice();
    state.messages.forEach(function (m, i) {
      while (notices.length && notices[0].after <= i) renderNotice(notices.shift().text);
      renderMessage(m);
    });
    notices.forEach(function (n) {
      renderNotice(n.text);
    });
    renderStatus();
  }

  function renderStatus() {
    var text = "";
    if (state.owner === "human") text = state.humanJoined ? t.humanJoined : t.handoffRequested;
    statusBar.textContent = text;
    statusBar.hidden = !text;
    humanBtn.hidden = state.owner === "human";
  }

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  var errorTimer = null;
  function showError(err) {
    var text;
    if (!navigator.onLine) err = new ApiError("offline");
    switch (err && err.kind) {
      case "rate_limited":
        text = err.retryAfter ? fmt(t.rateLimited, { seconds: err.retryAfter }) : t.rateLimitedShort;
        break;
      case "offline":
        text = t.offline;
        break;
      case "unavailable":
        text = t.unavailable;
        break;
      case "forbidden":
        text = t.forbidden;
        break;
      case "unauthorized":
        text = t.unauthorized;
        break;
      case "identity":
        text = t.identity;
        break;
      case "too_long":
        text = t.tooLong;
        break;
      default:
        text = t.generic;
    }
    errorBox.textContent = text;
    errorBox.hidden = false;
    errorBox.setAttribute("data-kind", (err && err.kind) || "generic");
    if (errorTimer) clearTimeout(errorTimer);
    if (err && err.kind === "rate_limited" && err.retryAfter) {
      coolingDown = true;
      sendBtn.disabled = true;
      errorTimer = setTimeout(function () {
        coolingDown = false;
        sendBtn.disabled = busy;
        clearError();
      }, err.retryAfter * 1000);
    }
  }
  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    errorBox.removeAttribute("data-kind");
  }

  // ---------- conversation ----------
  var busy = false;
  var coolingDown = false; // after a 429 with Retry-After, until that many seconds have passed

  function knownIndex(id) {
    for (var i = 0; i < state.messages.length; i++) if (state.messages[i].id === id) return i;
    return -1;
  }
  function lastServerMessageId() {
    for (var i = state.messages.length - 1; i >= 0; i--) if (state.messages[i].id) return state.messages[i].id;
    return null;
  }
  function fromServer(m) {
    return {
      id: m.id,
      role: m.role,
      text: m.text,
      citations: m.citations || [],
      rating: null,
      operatorId: m.operator_id || null,
    };
  }

  function applyOwner(owner) {
    if (!owner || owner === state.owner) return;
    var previous = state.owner || "bot";
    state.owner = owner;
    if (owner === "bot" && previous === "human") {
      state.humanJoined = false;
      state.waitingForHuman = false;
      addNotice(t.botBack);
    } else if (owner === "human") {
      state.waitingForHuman = true;
    }
    renderStatus();
    schedulePoll();
    saveState();
  }

  function mergeServerMessages(messages) {
    var added = false;
    (messages || []).forEach(function (m) {
      var i = knownIndex(m.id);
      if (i >= 0) {
        var kept = state.messages[i];
        kept.text = m.text;
        kept.citations = m.citations || kept.citations;
        renderMessage(kept);
        return;
      }
      if (m.role === "operator" && !state.humanJoined) {
        state.humanJoined = true;
        addNotice(t.humanJoined);
      }
      var message = fromServer(m);
      // A new conversation opens with the tenant's greeting, which the log already shows at its top.
      message.greeting = !state.messages.some(function (k) {
        return k.id;
      }) && m.role === "assistant" && m.text === t.greeting;
      state.messages.push(message);
      renderMessage(message);
      added = true;
      if (!state.open && m.role !== "user" && !message.greeting) state.unread = (state.unread || 0) + 1;
    });
    if (added) saveState();
    renderStatus();
    renderUnread();
  }

  async function ensureConversation() {
    if (state.conversationId) return state.conversationId;
    var conversation = await requestJson("POST", "/v1/conversations", {
      channel: "web",
      end_user_id: endUserId(),
      metadata: { page: location.origin + location.pathname, lang: lang },
    });
    state.conversationId = conversation.id;
    state.owner = conversation.owner || "bot";
    saveState();
    return state.conversationId;
  }

  async function sync() {
    if (!state.conversationId) return;
    var after = lastServerMessageId();
    var path = "/v1/conversations/" + encodeURIComponent(state.conversationId);
    if (after) path += "?after=" + encodeURIComponent(after);
    var conversation = await requestJson("GET", path);
    if (!conversation) return;
    mergeServerMessages(conversation.messages);
    applyOwner(conversation.owner);
    if (conversation.status === "resolved" && !state.resolved) {
      state.resolved = true;
      addNotice(t.resolved);
    } else if (conversation.status === "open") {
      state.resolved = false;
    }
  }

  var pollTimer = null;
  function schedulePoll() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
    // A person may answer while the panel is closed ("don't close the page"): keep polling, closed too.
    if (!state.conversationId) return;
    if (state.owner !== "human" && !state.waitingForHuman) return;
    pollTimer = setTimeout(async function () {
      pollTimer = null;
      try {
        if (!busy) await sync();
        clearErrorIf("unavailable", "offline");
      } catch (err) {
        if (err.kind === "not_found") return resetConversation(false);
        showError(err);
      }
      schedulePoll();
    }, POLL_MS);
  }
  function clearErrorIf() {
    var kinds = Array.prototype.slice.call(arguments);
    if (kinds.indexOf(errorBox.getAttribute("data-kind")) >= 0) clearError();
  }

  function setBusy(value) {
    busy = value;
    sendBtn.disabled = value || coolingDown;
    input.setAttribute("aria-busy", value ? "true" : "false");
  }

  async function send(text) {
    if (busy) return;
    clearError();
    setBusy(true);
    var pending = { id: null, role: "user", text: text, citations: [], rating: null };
    state.messages.push(pending);
    var pendingNode = renderMessage(pending);
    var reply = null;
    var replyNode = null;
    try {
      await ensureConversation();
      var bot = state.owner !== "human";
      typing.hidden = !bot;
      log.append(typing);
      scrollToEnd();
      var response = await request(
        "POST",
        "/v1/conversations/" + encodeURIComponent(state.conversationId) + "/messages",
        { text: text, client_message_id: randomId("msg") },
        { Accept: "text/event-stream" }
      );
      var result = null;
      var streamError = null;
      var contentType = response.headers.get("Content-Type") || "";
      if (contentType.indexOf("text/event-stream") >= 0) {
        await readEventStream(response, function (packet) {
          switch (packet.type) {
            case "token":
              if (!reply) {
                reply = { id: null, role: "assistant", text: "", citations: [], rating: null };
                typing.hidden = true;
                replyNode = renderMessage(reply);
                replyNode.setAttribute("aria-busy", "true");
              }
              reply.text += packet.text;
              renderText(replyNode.querySelector(".text"), reply.text, reply.citations);
              scrollToEnd();
              break;
            case "reset": // the provider failed mid-answer; another answers from the start
              if (reply) {
                reply.text = "";
                reply.citations = [];
                renderText(replyNode.querySelector(".text"), reply.text, reply.citations);
              }
              break;
            case "citation":
              if (!reply) {
                reply = { id: null, role: "assistant", text: "", citations: [], rating: null };
                replyNode = renderMessage(reply);
              }
              reply.citations.push(packet.citation);
              renderText(replyNode.querySelector(".text"), reply.text, reply.citations);
              renderCitations(replyNode, reply.citations);
              break;
            case "tool_call":
              if (packet.status === "started") typing.firstChild.textContent = t.lookingUp + " ";
              break;
            case "handoff":
              applyOwner("human");
              break;
            case "error":
              streamError = packet;
              break;
            case "done":
              result = packet.result;
              break;
            default:
              break; // heartbeat and anything newer
          }
        });
      } else {
        result = await response.json();
      }
      typing.hidden = true;
      typing.firstChild.textContent = t.typing + " ";
      if (result) {
        pending.id = result.user_message.id;
        messageNodes[pending.id] = pendingNode;
        if (result.reply) {
          var final = fromServer(result.reply);
          if (reply) {
            reply.id = final.id;
            reply.text = final.text || reply.text;
            reply.citations = final.citations.length ? final.citations : reply.citations;
            messageNodes[reply.id] = replyNode;
            replyNode.removeAttribute("aria-busy");
            state.messages.push(reply);
            renderMessage(reply);
          } else {
            state.messages.push(final);
            renderMessage(final);
          }
        }
        if (result.handoff) applyOwner("human");
        applyOwner(result.owner);
      } else if (reply) {
        // The stream ended without its final packet: keep what arrived, without feedback buttons.
        replyNode.removeAttribute("aria-busy");
        state.messages.push(reply);
      }
      if (streamError) {
        showError(streamErrorKind(streamError));
      }
      saveState();
    } catch (err) {
      typing.hidden = true;
      if (err.kind === "not_found" && state.conversationId) {
        // The conversation is gone on the server (expired or another device): start over next time.
        state.conversationId = null;
      }
      // An unsent message is taken back into the input so nothing the customer typed is lost.
      var index = state.messages.indexOf(pending);
      if (index >= 0) state.messages.splice(index, 1);
      pendingNode.remove();
      if (!input.value) input.value = text;
      showError(err);
      saveState();
    } finally {
      setBusy(false);
      schedulePoll();
    }
  }

  function streamErrorKind(packet) {
    var code = packet.code || "";
    if (code.indexOf("rate") >= 0 || code === "budget_exhausted") return new ApiError("rate_limited");
    if (code.indexOf("upstream") >= 0 || code === "service_unavailable") return new ApiError("unavailable");
    return new ApiError("generic", packet.message, null, code);
  }

  async function requestHuman() {
    clearError();
    humanBtn.disabled = true;
    try {
      await ensureConversation();
      var result = await requestJson(
        "POST",
        "/v1/conversations/" + encodeURIComponent(state.conversationId) + "/handoff"
      );
      state.waitingForHuman = true;
      applyOwner((result && result.owner) || "human"); // the answer is HandoffInfo: a human owns it now
      renderStatus();
      schedulePoll();
      saveState();
    } catch (err) {
      showError(err);
    } finally {
      humanBtn.disabled = false;
    }
  }

  function resetConversation(announce) {
    state.conversationId = null;
    state.owner = "bot";
    state.waitingForHuman = false;
    state.humanJoined = false;
    state.resolved = false;
    state.messages = [];
    state.notices = [];
    state.unread = 0;
    renderUnread();
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
    clearError();
    renderAll();
    if (announce) renderNotice(t.newConversationDone);
    saveState();
  }

  // ---------- open / close ----------
  function setOpen(open, focus) {
    state.open = open;
    if (open) state.unread = 0;
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    renderUnread();
    saveState();
    if (open) {
      scrollToEnd();
      if (focus !== false) input.focus();
      if (state.conversationId) {
        sync()
          .then(schedulePoll)
          .catch(function (err) {
            if (err.kind === "not_found") resetConversation(false);
            else showError(err);
          });
      }
    } else {
      schedulePoll();
      if (focus !== false) launcher.focus();
    }
  }

  launcher.addEventListener("click", function () {
    setOpen(panel.hidden);
  });
  closeBtn.addEventListener("click", function () {
    setOpen(false);
  });
  newBtn.addEventListener("click", function () {
    resetConversation(true);
    input.focus();
  });
  humanBtn.addEventListener("click", requestHuman);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      setOpen(false);
    }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || busy || sendBtn.disabled) return;
    input.value = "";
    send(text);
  });
  window.addEventListener("offline", function () {
    showError(new ApiError("offline"));
  });
  window.addEventListener("online", function () {
    clearErrorIf("offline");
  });

  // The tenant's own greeting (its assistant settings), in this visitor's language; data-greeting and
  // data-strings still win. Until it arrives, or when the tenant has none, the built-in one shows.
  async function loadGreeting() {
    if (ds.greeting || (customStrings && customStrings.greeting)) return;
    try {
      var assistant = await requestJson("GET", "/v1/assistant/greeting");
      var greetings = (assistant && assistant.greeting) || {};
      var text = greetings[lang] || greetings.en || "";
      if (text && text !== t.greeting) {
        t.greeting = text;
        renderAll();
      }
    } catch (e) {
      /* an older gateway, or offline: the built-in greeting stays */
    }
  }

  function mount() {
    document.body.appendChild(host);
    loadGreeting();
    renderAll();
    renderUnread();
    if (state.open || ds.open === "true") setOpen(true, false);
    else schedulePoll();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.Switchboard = {
    open: function () {
      setOpen(true);
    },
    close: function () {
      setOpen(false);
    },
    newConversation: function () {
      resetConversation(true);
    },
  };
})();
