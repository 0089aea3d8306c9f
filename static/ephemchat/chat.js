/* ephemchat: the chat page. Plain script, no build step, no dependencies.
 *
 * Speaks PROTOCOL.md over one WebSocket for all open rooms. Small pure helpers are on
 * window.EphemChat so the browser tests can check them directly.
 *
 * Rules this file keeps:
 * - User data (text, names, room titles) is only ever set with textContent.
 * - A message is shown once: within a room offsets only grow (PROTOCOL.md section 2), so
 *   anything at or below the last offset shown is a replay and is dropped.
 * - After a reconnect every room is re-joined with `since` = the last offset shown.
 * - Every message is removed at its expires_at.
 *
 * Alternate gateways: `?gateways=ws://host:8001/ws/chat/,ws://host:8002/ws/chat/` makes
 * the page rotate through these URLs on each reconnect (tests, local clusters without a
 * proxy). Only URLs on the page's own host name are accepted (any port), so a shared link
 * cannot send someone's chat to another site.
 */
(function () {
  "use strict";

  // ---- limits and timings ----------------------------------------------------------
  const BACKOFF = { baseMs: 500, capMs: 15000 }; // 0.5 s, 1 s, 2 s … at most 15 s
  const RESTART_JITTER_MS = 250; // close 1012: come back at once, but not all in the same ms
  const ABUSE_BACKOFF_ATTEMPT = 4; // close 1008: wait 4-8 s before trying again
  const PING_INTERVAL_MS = 25000; // below common proxy idle timeouts (nginx: 60 s)
  const SILENCE_LIMIT_MS = PING_INTERVAL_MS + 10000; // no frame at all for this long: dead socket
  const TICK_MS = 250; // countdown refresh and expiry check
  const SKEW_SAMPLES = 20; // recent live messages used to estimate the server's clock
  const SKEW_IGNORE_MS = 1500; // below this, network latency dominates: trust our clock
  const EXPIRING_SOON_MS = 10000; // fade a message in its last 10 s
  const NOTICE_MS = 6000;
  const MAX_NAME_CHARS = 32;
  const STORAGE_NAME = "ephemchat.name";
  const STORAGE_ROOMS = "ephemchat.rooms";
  const URL_PLACEHOLDER = "x-room-x"; // in the page's data-chat-url and data-meta-url

  // ---- pure helpers ------------------------------------------------------------------
  const ROOM_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

  function isValidRoomId(value) {
    return typeof value === "string" && ROOM_ID.test(value);
  }

  /** Reconnect delay for the given attempt (0, 1, 2 …): exponential, capped, with
   * "equal jitter" (half fixed, half random) so clients spread out but never hammer. */
  function backoffDelay(attempt, options, random) {
    const step = Math.min(options.capMs, options.baseMs * Math.pow(2, Math.max(0, attempt)));
    return Math.round(step / 2 + (random() * step) / 2);
  }

  /** "45s", "1:05", "2h 03m". */
  function formatRemaining(ms) {
    const seconds = Math.max(0, Math.ceil(ms / 1000));
    if (seconds < 60) return seconds + "s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + ":" + String(seconds % 60).padStart(2, "0");
    return Math.floor(minutes / 60) + "h " + String(minutes % 60).padStart(2, "0") + "m";
  }

  /** The messages not shown yet, in order, and the new last offset. */
  function freshMessages(lastOffset, messages) {
    const fresh = [];
    let last = lastOffset;
    for (const message of messages) {
      if (Number.isInteger(message.offset) && message.offset > last) {
        fresh.push(message);
        last = message.offset;
      }
    }
    return { fresh: fresh, lastOffset: last };
  }

  /** WebSocket URLs to use, in rotation order (see the header comment). */
  function gatewayUrls(search, loc) {
    const own = (loc.protocol === "https:" ? "wss" : "ws") + "://" + loc.host + "/ws/chat/";
    const raw = new URLSearchParams(search).get("gateways");
    if (!raw) return [own];
    const urls = [];
    for (const part of raw.split(",")) {
      let url;
      try {
        url = new URL(part.trim());
      } catch (e) {
        continue;
      }
      const schemeOk = url.protocol === "wss:" || (url.protocol === "ws:" && loc.protocol !== "https:");
      if (schemeOk && url.hostname === loc.hostname && !urls.includes(url.href)) urls.push(url.href);
    }
    return urls.length ? urls : [own];
  }

  /** Server clock minus ours. Each sample is `ts - arrival time` of a live message: the
   * broker stamped ts a little before it arrived, so every sample is low by the latency
   * and the largest recent one is the best estimate. Small values are latency: ignored. */
  function clockOffset(samples) {
    if (!samples.length) return 0;
    const best = Math.max.apply(null, samples);
    return Math.abs(best) < SKEW_IGNORE_MS ? 0 : best;
  }

  /** A display name as the server accepts it, or null. */
  function normalizeName(raw) {
    const name = String(raw || "").trim();
    if (!name || Array.from(name).length > MAX_NAME_CHARS) return null;
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) return null;
    return name;
  }

  /** Plain words for an error frame (PROTOCOL.md error codes). */
  function errorText(code, limits) {
    const maxChars = limits && limits.max_text_chars;
    const maxRooms = limits && limits.max_rooms;
    switch (code) {
      case "rate_limited":
        return "Slow down: that was too many messages at once. Try again in a moment.";
      case "too_long":
        return maxChars ? "Too long: a message can have at most " + maxChars + " characters." : "Too long.";
      case "bad_text":
        return "Empty messages are not sent.";
      case "unavailable":
        return "Not delivered: the chat service could not store it right now.";
      case "room_locked":
        return "This room is locked: new messages are refused.";
      case "not_joined":
        return "Not in this room yet.";
      case "too_many_rooms":
        return "You can be in at most " + (maxRooms || "a few") + " rooms at once. Leave one first.";
      case "bad_room":
        return "Room ids are 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit.";
      case "bad_name":
        return "Names are 1-32 printable characters.";
      case "name_locked":
        return "Signed-in users chat under their account name.";
      case "name_reserved":
        return "That name belongs to a registered account. Please choose another.";
      default:
        return "Something went wrong (" + code + ").";
    }
  }

  window.EphemChat = {
    BACKOFF: BACKOFF,
    backoffDelay: backoffDelay,
    formatRemaining: formatRemaining,
    freshMessages: freshMessages,
    gatewayUrls: gatewayUrls,
    clockOffset: clockOffset,
    normalizeName: normalizeName,
    errorText: errorText,
    isValidRoomId: isValidRoomId,
  };

  const root = document.getElementById("chat");
  if (!root) return;

  // ---- page state --------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const ui = {
    tabs: $("room-tabs"),
    logs: $("room-logs"),
    title: $("room-title"),
    roomId: $("room-id"),
    description: $("room-description"),
    banner: $("room-banner"),
    composer: $("composer"),
    input: $("message-input"),
    send: $("send-button"),
    counter: $("char-counter"),
    status: $("conn-status"),
    statusText: $("conn-status-text"),
    statusLive: $("conn-status-live"),
    retryNow: $("reconnect-now"),
    nameButton: $("name-button"),
    nameDialog: $("name-dialog"),
    nameForm: $("name-form"),
    nameInput: $("name-input"),
    nameError: $("name-error"),
    addRoom: $("add-room"),
    addRoomInput: $("add-room-input"),
    addRoomError: $("add-room-error"),
    notice: $("notice"),
  };
  const urlTemplates = { chat: root.dataset.chatUrl, meta: root.dataset.metaUrl };
  const accountName = root.dataset.accountName || "";
  const session = Math.random().toString(36).slice(2, 8);
  let clientCounter = 0;

  const state = {
    rooms: new Map(), // room id -> Room
    active: null,
    name: accountName || storageGet(STORAGE_NAME) || "",
    serverName: "",
    ttlMs: Number(root.dataset.ttlMs) || 120000,
    limits: { max_text_chars: 2000, max_rooms: 20, max_frame_bytes: 16384 },
    skewSamples: [],
    skew: 0,
  };

  const conn = {
    urls: gatewayUrls(location.search, location),
    index: 0,
    ws: null,
    attempt: 0,
    reconnectTimer: null,
    reconnectAt: 0,
    pingTimer: null,
    lastFrameAt: 0,
    lastPingAt: 0,
    greeted: false, // the first welcome of this socket has arrived
    spokenOnce: false,
  };

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {
      /* private mode: the page still works, it just forgets */
    }
  }

  function serverNow() {
    return Date.now() + state.skew;
  }

  function fill(template, room) {
    return template.replace(URL_PLACEHOLDER, encodeURIComponent(room));
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- notices and connection status --------------------------------------------------
  let noticeTimer = null;
  function notice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      ui.notice.hidden = true;
    }, NOTICE_MS);
  }

  // Screen readers hear the state changes, not the countdown ticking.
  const SPOKEN_STATUS = {
    connecting: "Connecting…",
    online: "Connected.",
    reconnecting: "Connection lost. Reconnecting automatically.",
  };

  function setStatus(kind, text) {
    if (ui.status.dataset.state !== kind && conn.spokenOnce) ui.statusLive.textContent = SPOKEN_STATUS[kind];
    conn.spokenOnce = true;
    ui.status.dataset.state = kind;
    if (ui.statusText.textContent !== text) ui.statusText.textContent = text;
    ui.retryNow.hidden = kind !== "reconnecting";
    root.dataset.connection = kind;
  }

  // ---- rooms -------------------------------------------------------------------------
  function makeRoom(id, meta) {
    const room = {
      id: id,
      title: (meta && meta.title) || id,
      description: (meta && meta.description) || "",
      locked: Boolean(meta && meta.locked),
      closed: Boolean(meta && meta.closed),
      lastOffset: -1,
      joinState: "idle", // idle | joining | ready
      joinAttempt: 0,
      joinTimer: null,
      messages: new Map(), // offset -> shown message
      local: new Map(), // client_id -> own message not confirmed yet
      unread: 0,
      pane: el("div", "log-pane"),
      list: el("ol", "log"),
      tab: el("li", "room-tab"),
    };
    // role=log announces new messages politely; countdown changes are not announced.
    room.pane.id = "log-" + id;
    room.pane.setAttribute("role", "log");
    room.pane.setAttribute("aria-live", "polite");
    room.pane.setAttribute("aria-relevant", "additions");
    room.pane.setAttribute("aria-label", "Messages in #" + id);
    room.pane.hidden = true;
    room.pane.dataset.room = id;
    room.pane.appendChild(room.list);
    ui.logs.appendChild(room.pane);

    const open = el("button", "room-tab-open");
    open.type = "button";
    open.appendChild(el("span", "room-tab-hash", "#"));
    open.appendChild(el("span", "room-tab-name", id));
    const badge = el("span", "badge");
    badge.hidden = true;
    open.appendChild(badge);
    open.addEventListener("click", () => activate(id, true));
    const leave = el("button", "room-tab-leave", "×");
    leave.type = "button";
    leave.setAttribute("aria-label", "Leave " + id);
    leave.title = "Leave #" + id;
    leave.addEventListener("click", () => leaveRoom(id));
    room.tab.dataset.room = id;
    room.tab.appendChild(open);
    room.tab.appendChild(leave);
    room.openButton = open;
    room.badge = badge;
    ui.tabs.appendChild(room.tab);
    return room;
  }

  function addRoom(id, meta, makeActive) {
    let room = state.rooms.get(id);
    if (!room) {
      if (state.rooms.size >= state.limits.max_rooms) {
        notice(errorText("too_many_rooms", state.limits));
        return null;
      }
      room = makeRoom(id, meta);
      state.rooms.set(id, room);
      saveRooms();
      updateLeaveButtons();
      if (!meta) loadMeta(room);
      if (isOpen()) join(room);
    }
    if (makeActive) activate(id, true);
    return room;
  }

  function loadMeta(room) {
    fetch(fill(urlTemplates.meta, room.id), { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((meta) => {
        if (!meta || !state.rooms.has(room.id)) return;
        room.title = meta.title || room.id;
        room.description = meta.description || "";
        room.locked = Boolean(meta.locked);
        room.closed = Boolean(meta.closed);
        if (state.active === room.id) renderRoomHeader(room);
      })
      .catch(() => {
        /* offline: the room works without its title */
      });
  }

  function saveRooms() {
    storageSet(STORAGE_ROOMS, JSON.stringify(Array.from(state.rooms.keys())));
  }

  function updateLeaveButtons() {
    const single = state.rooms.size <= 1;
    for (const room of state.rooms.values()) room.tab.querySelector(".room-tab-leave").hidden = single;
  }

  function renderRoomHeader(room) {
    ui.title.textContent = room.title;
    ui.roomId.textContent = "#" + room.id;
    ui.roomId.hidden = room.title === room.id;
    ui.description.textContent = room.description;
    ui.description.hidden = !room.description;
    let banner = "";
    if (room.closed) banner = "This room is closed: you can read what is left, but new messages are refused.";
    else if (room.locked) banner = "This room is locked by staff: you can read, but new messages are refused.";
    ui.banner.textContent = banner;
    ui.banner.hidden = !banner;
    ui.input.placeholder = "Message #" + room.id;
  }

  function activate(id, focusInput) {
    const room = state.rooms.get(id);
    if (!room) return;
    state.active = id;
    for (const other of state.rooms.values()) {
      const current = other.id === id;
      other.pane.hidden = !current;
      other.tab.classList.toggle("is-active", current);
      if (current) other.openButton.setAttribute("aria-current", "page");
      else other.openButton.removeAttribute("aria-current");
    }
    room.unread = 0;
    renderBadge(room);
    renderRoomHeader(room);
    document.title = "#" + id + " · ephemchat";
    const url = fill(urlTemplates.chat, id) + location.search;
    if (location.pathname + location.search !== url) history.replaceState(null, "", url);
    scrollToEnd(room, true);
    if (focusInput) ui.input.focus();
  }

  function leaveRoom(id) {
    const room = state.rooms.get(id);
    if (!room || state.rooms.size <= 1) return;
    if (isOpen() && room.joinState !== "idle") sendFrame({ type: "leave", room: id });
    clearTimeout(room.joinTimer);
    state.rooms.delete(id);
    room.pane.remove();
    room.tab.remove();
    saveRooms();
    updateLeaveButtons();
    if (state.active === id) activate(state.rooms.keys().next().value, true);
  }

  function renderBadge(room) {
    room.badge.textContent = room.unread > 99 ? "99+" : String(room.unread);
    room.badge.hidden = room.unread === 0;
    room.badge.setAttribute("aria-label", room.unread + " new");
  }

  // ---- messages ----------------------------------------------------------------------
  function isMine(user) {
    return Boolean(user) && (user === state.serverName || user === state.name);
  }

  function messageNode(user, text, mine) {
    const item = el("li", "msg" + (mine ? " is-mine" : ""));
    item.dataset.user = user;
    item.appendChild(el("div", "msg-user", user));
    const body = el("div", "msg-body");
    body.appendChild(el("p", "msg-text", text));
    const clock = el("span", "msg-remaining");
    clock.setAttribute("aria-hidden", "true");
    body.appendChild(clock);
    item.appendChild(body);
    const life = el("div", "msg-life");
    life.setAttribute("aria-hidden", "true");
    item.appendChild(life);
    return { item: item, clock: clock, life: life };
  }

  function startLife(shown) {
    const left = shown.expiresAt - serverNow();
    const total = Math.max(1, shown.expiresAt - shown.ts);
    shown.life.style.setProperty("--life-start", String(Math.max(0, Math.min(1, left / total))));
    shown.life.style.animationDuration = Math.max(0, left) + "ms";
    // Restart the animation from the new starting point.
    shown.life.classList.remove("is-running");
    void shown.life.offsetWidth;
    shown.life.classList.add("is-running");
    const at = new Date(shown.expiresAt - state.skew);
    shown.item.title = "Disappears at " + at.toLocaleTimeString();
    updateClock(shown, serverNow());
  }

  function updateClock(shown, now) {
    const left = shown.expiresAt - now;
    const text = formatRemaining(left);
    if (shown.clock.textContent !== text) shown.clock.textContent = text;
    if (left <= EXPIRING_SOON_MS) shown.item.classList.add("is-expiring");
  }

  function nearEnd() {
    const box = ui.logs;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToEnd(room, force) {
    if (state.active !== room.id) return;
    if (force || room.stick) ui.logs.scrollTop = ui.logs.scrollHeight;
  }

  function showMessage(room, m, live) {
    // Our own message: known by its offset once acked, or by its client_id in the echo.
    const ackedLocal =
      findLocalByOffset(room, m.offset) || (m.client_id && isMine(m.user) ? room.local.get(m.client_id) : null);
    let shown;
    if (ackedLocal) {
      // Our own message, acked before its echo: it becomes the real one in place.
      room.local.delete(ackedLocal.clientId);
      shown = ackedLocal.shown;
      shown.item.classList.remove("is-local", "is-sent", "is-failed");
      const status = shown.item.querySelector(".msg-status");
      if (status) status.remove();
      // Confirmed now: it goes above any own message still unsent (failed, waiting), where
      // the other confirmed messages are, so every member sees the same order.
      const firstUnsent = room.list.querySelector(".msg.is-local");
      if (firstUnsent && firstUnsent.compareDocumentPosition(shown.item) & Node.DOCUMENT_POSITION_FOLLOWING) {
        const oldNext = shown.item.nextElementSibling;
        room.list.insertBefore(shown.item, firstUnsent);
        regroup(oldNext);
        regroup(shown.item);
        regroup(firstUnsent);
      }
    } else {
      const stick = state.active === room.id && nearEnd();
      const node = messageNode(m.user, m.text, isMine(m.user));
      shown = node;
      insertBeforeLocal(room, node.item);
      room.stick = stick;
      if (live && state.active !== room.id) {
        room.unread += 1;
        renderBadge(room);
      }
    }
    shown.offset = m.offset;
    shown.ts = m.ts;
    shown.expiresAt = m.expires_at;
    shown.item.dataset.offset = String(m.offset);
    shown.item.dataset.state = "shown";
    room.messages.set(m.offset, shown);
    startLife(shown);
    scrollToEnd(room, false);
  }

  function insertBeforeLocal(room, item) {
    const firstLocal = room.list.querySelector(".msg.is-local");
    room.list.insertBefore(item, firstLocal);
    regroup(item);
    regroup(item.nextElementSibling);
  }

  /** A message right after one by the same person drops the repeated name. */
  function regroup(item) {
    if (!item) return;
    const before = item.previousElementSibling;
    item.classList.toggle("is-continued", Boolean(before) && before.dataset.user === item.dataset.user);
  }

  function removeItem(item) {
    const next = item.nextElementSibling;
    item.remove();
    regroup(next);
  }

  function findLocalByOffset(room, offset) {
    for (const local of room.local.values()) if (local.offset === offset) return local;
    return null;
  }

  function receiveMessages(room, messages, live) {
    const result = freshMessages(room.lastOffset, messages);
    room.lastOffset = result.lastOffset;
    for (const m of result.fresh) {
      if (m.expires_at <= serverNow()) continue;
      const shown = room.messages.get(m.offset);
      if (shown && !shown.item.classList.contains("is-local")) continue; // shown already
      showMessage(room, m, live); // new, or our acked copy taking the server's timestamps
    }
    return result.fresh;
  }

  function tick() {
    const now = serverNow();
    for (const room of state.rooms.values()) {
      for (const [offset, shown] of room.messages) {
        if (shown.expiresAt <= now) {
          removeItem(shown.item);
          room.messages.delete(offset);
          for (const [clientId, local] of room.local) if (local.offset === offset) room.local.delete(clientId);
        } else if (state.active === room.id) {
          updateClock(shown, now);
        }
      }
    }
  }

  // ---- own messages: local until acked -------------------------------------------------
  function newClientId() {
    clientCounter += 1;
    return "c-" + session + "-" + clientCounter;
  }

  function submitText(room, text) {
    const clientId = newClientId();
    const node = messageNode(state.serverName || state.name || "you", text, true);
    node.item.classList.add("is-local");
    node.clock.textContent = "";
    const local = { clientId: clientId, text: text, shown: node, offset: null, state: "queued" };
    room.local.set(clientId, local);
    room.list.appendChild(node.item);
    regroup(node.item);
    room.stick = true;
    scrollToEnd(room, true);
    if (room.joinState === "ready" && isOpen()) transmit(room, local);
    else setLocalState(local, "queued");
  }

  function transmit(room, local) {
    const frame = { type: "send", room: room.id, text: local.text, client_id: local.clientId };
    const encoded = JSON.stringify(frame);
    if (new TextEncoder().encode(encoded).length > state.limits.max_frame_bytes) {
      setLocalState(local, "failed", errorText("too_long", state.limits));
      return;
    }
    setLocalState(local, "sending");
    conn.ws.send(encoded);
  }

  function setLocalState(local, kind, message) {
    const item = local.shown.item;
    const stick = nearEnd();
    local.state = kind;
    item.dataset.state = kind;
    item.classList.toggle("is-failed", kind === "failed");
    const old = item.querySelector(".msg-status");
    if (old) old.remove();
    const status = el("div", "msg-status");
    if (kind === "queued") status.appendChild(el("span", "", "Waiting for the connection…"));
    else if (kind === "sending" || kind === "unknown") status.appendChild(el("span", "", "Sending…"));
    else if (kind === "failed") {
      status.setAttribute("role", "alert");
      status.appendChild(el("span", "msg-error", message || "Not sent."));
      const retry = el("button", "msg-retry", "Retry");
      retry.type = "button";
      retry.addEventListener("click", () => retryLocal(local));
      status.appendChild(retry);
      const drop = el("button", "msg-discard", "Discard");
      drop.type = "button";
      drop.addEventListener("click", () => discardLocal(local));
      status.appendChild(drop);
    }
    if (kind !== "sent") item.appendChild(status);
    if (stick) ui.logs.scrollTop = ui.logs.scrollHeight;
  }

  function roomOfLocal(local) {
    for (const room of state.rooms.values()) if (room.local.get(local.clientId) === local) return room;
    return null;
  }

  function retryLocal(local) {
    const room = roomOfLocal(local);
    if (!room) return;
    resend(room, local);
    ui.input.focus();
  }

  function resend(room, local) {
    room.local.delete(local.clientId);
    local.clientId = newClientId(); // a new attempt: the old id has had its answer
    room.local.set(local.clientId, local);
    const next = local.shown.item.nextElementSibling;
    room.list.appendChild(local.shown.item); // retried messages go to the end
    regroup(next);
    regroup(local.shown.item);
    if (room.joinState === "ready" && isOpen()) transmit(room, local);
    else setLocalState(local, "queued");
  }

  function discardLocal(local) {
    const room = roomOfLocal(local);
    if (room) room.local.delete(local.clientId);
    removeItem(local.shown.item);
    ui.input.focus();
  }

  function onAck(frame) {
    const room = state.rooms.get(frame.room);
    if (!room) return;
    const local = room.local.get(frame.client_id);
    if (!local) return;
    if (room.messages.has(frame.offset)) {
      // The echo came first and is shown: the local copy goes.
      room.local.delete(local.clientId);
      removeItem(local.shown.item);
      return;
    }
    // Sent; it stays here until its echo brings the server's timestamps.
    local.offset = frame.offset;
    const status = local.shown.item.querySelector(".msg-status");
    if (status) status.remove();
    local.shown.item.classList.add("is-sent");
    local.shown.item.dataset.state = "sent";
    local.state = "sent";
    local.shown.ts = serverNow();
    local.shown.expiresAt = serverNow() + state.ttlMs;
    local.shown.offset = frame.offset;
    local.shown.item.dataset.offset = String(frame.offset);
    startLife(local.shown);
    room.messages.set(frame.offset, local.shown);
  }

  /** After a re-join: own messages in flight when the socket dropped were posted if
   * the replay holds them; the others are sent again (or offered for retry). */
  function settleInFlight(room, fresh, truncated) {
    for (const local of Array.from(room.local.values())) {
      if (local.state !== "unknown") continue;
      const index = fresh.findIndex(
        (m) => isMine(m.user) && (m.client_id ? m.client_id === local.clientId : m.text === local.text)
      );
      if (index >= 0) {
        fresh.splice(index, 1);
        room.local.delete(local.clientId);
        removeItem(local.shown.item);
      } else if (truncated) {
        setLocalState(local, "failed", "The connection dropped; this may not have been sent.");
      } else {
        setLocalState(local, "queued");
      }
    }
  }

  // ---- the connection ----------------------------------------------------------------
  function isOpen() {
    return conn.ws !== null && conn.ws.readyState === WebSocket.OPEN && conn.greeted === true;
  }

  function sendFrame(frame) {
    if (conn.ws && conn.ws.readyState === WebSocket.OPEN) conn.ws.send(JSON.stringify(frame));
  }

  function connect() {
    clearTimeout(conn.reconnectTimer);
    conn.reconnectTimer = null;
    const url = conn.urls[conn.index % conn.urls.length];
    root.dataset.wsUrl = url;
    setStatus(conn.attempt === 0 ? "connecting" : "reconnecting", "Connecting…");
    ui.retryNow.hidden = true;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      scheduleReconnect(1006);
      return;
    }
    conn.ws = ws;
    conn.greeted = false;
    ws.onmessage = (event) => {
      if (ws !== conn.ws) return;
      conn.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame.type === "string") onFrame(frame);
    };
    ws.onclose = (event) => {
      if (ws !== conn.ws) return;
      conn.ws = null;
      conn.greeted = false;
      clearInterval(conn.pingTimer);
      root.dataset.lastCloseCode = String(event.code); // for people (and tests) debugging
      connectionLost();
      if (event.code === 1008) notice("The server closed the connection after too many refused messages.");
      if (event.code === 1009) notice("A message was too large for the server.");
      scheduleReconnect(event.code);
    };
  }

  function connectionLost() {
    for (const room of state.rooms.values()) {
      clearTimeout(room.joinTimer);
      room.joinState = "idle";
      for (const local of room.local.values()) {
        if (local.state === "sending") setLocalState(local, "unknown");
      }
    }
  }

  function scheduleReconnect(code) {
    let delay;
    if (code === 1012) {
      delay = Math.round(Math.random() * RESTART_JITTER_MS);
      conn.attempt = 1;
    } else {
      if (code === 1008) conn.attempt = Math.max(conn.attempt, ABUSE_BACKOFF_ATTEMPT);
      delay = backoffDelay(conn.attempt, BACKOFF, Math.random);
      conn.attempt += 1;
    }
    conn.index = (conn.index + 1) % conn.urls.length; // the next gateway, if there are several
    conn.reconnectAt = Date.now() + delay;
    conn.reconnectTimer = setTimeout(connect, delay);
    showReconnectCountdown();
  }

  function showReconnectCountdown() {
    if (conn.reconnectTimer === null) return;
    const left = Math.max(0, conn.reconnectAt - Date.now());
    setStatus("reconnecting", left < 1000 ? "Reconnecting…" : "Offline: retrying in " + Math.ceil(left / 1000) + "s");
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        onWelcome(frame);
        break;
      case "joined": {
        const room = state.rooms.get(frame.room);
        if (room) room.joinState = "joining";
        break;
      }
      case "history":
        onHistory(frame);
        break;
      case "message": {
        const room = state.rooms.get(frame.room);
        if (!room || room.joinState !== "ready") break;
        recordSkew(frame.ts);
        receiveMessages(room, [frame], true);
        break;
      }
      case "ack":
        onAck(frame);
        break;
      case "error":
        onError(frame);
        break;
      default:
        break; // pong, left, and frame types added later
    }
  }

  function onWelcome(frame) {
    state.serverName = frame.name || state.serverName;
    if (frame.ttl_ms) state.ttlMs = frame.ttl_ms;
    if (frame.limits) Object.assign(state.limits, frame.limits);
    renderName();
    if (conn.greeted) return; // the answer to our hello
    conn.greeted = true;
    conn.attempt = 0;
    setStatus("online", "Connected");
    clearInterval(conn.pingTimer);
    conn.pingTimer = setInterval(keepAlive, PING_INTERVAL_MS / 5);
    conn.lastPingAt = Date.now();
    if (state.name && !accountName && state.name !== state.serverName) {
      sendFrame({ type: "hello", name: state.name });
    }
    for (const room of state.rooms.values()) join(room);
  }

  function keepAlive() {
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    if (now - conn.lastFrameAt > SILENCE_LIMIT_MS) {
      conn.ws.close(4000, "no answer"); // a dead socket the OS did not report
      return;
    }
    if (now - conn.lastPingAt >= PING_INTERVAL_MS) {
      conn.lastPingAt = now;
      sendFrame({ type: "ping" });
    }
  }

  function join(room) {
    clearTimeout(room.joinTimer);
    room.joinState = "joining";
    const frame = { type: "join", room: room.id };
    if (room.lastOffset >= 0) frame.since = room.lastOffset;
    sendFrame(frame);
  }

  function onHistory(frame) {
    const room = state.rooms.get(frame.room);
    if (!room) return;
    const resumed = room.lastOffset >= 0;
    const messages = Array.isArray(frame.messages) ? frame.messages : [];
    const pendingMatches = freshMessages(room.lastOffset, messages).fresh;
    settleInFlight(room, pendingMatches.slice(), Boolean(frame.truncated));
    // Replayed copies of our in-flight messages are shown like any other message.
    receiveMessages(room, messages, resumed);
    room.joinState = "ready";
    room.joinAttempt = 0;
    if (resumed && frame.truncated) notice("#" + room.id + ": some messages were missed while you were away.");
    for (const local of Array.from(room.local.values())) {
      if (local.state === "queued") resend(room, local);
    }
    scrollToEnd(room, !resumed);
  }

  function onError(frame) {
    const room = frame.room ? state.rooms.get(frame.room) : null;
    const local = room && frame.client_id ? room.local.get(frame.client_id) : null;
    const text = errorText(frame.code, state.limits);
    switch (frame.code) {
      case "lagging":
        if (room) join(room); // re-join with since: the server fills the gap
        return;
      case "already_joined":
        return;
      case "room_locked":
        if (room) {
          room.locked = true;
          if (state.active === room.id) renderRoomHeader(room);
        }
        break;
      case "rate_limited":
      case "unavailable":
        // A refused join (no client_id): try again shortly. A refused send is shown below.
        if (room && !local && (frame.code === "unavailable" || room.joinState !== "ready")) {
          // The join could not read the room: try again shortly.
          room.joinState = "idle";
          room.joinTimer = setTimeout(() => {
            if (isOpen() && state.rooms.has(room.id)) join(room);
          }, backoffDelay(room.joinAttempt++, BACKOFF, Math.random));
          notice("#" + room.id + " cannot be read right now; retrying.");
          return;
        }
        break;
      case "too_many_rooms":
      case "bad_room":
        if (room) {
          room.joinState = "idle";
          notice(text);
          if (state.rooms.size > 1) leaveRoom(room.id);
          return;
        }
        break;
      case "bad_name":
      case "name_reserved":
        openNameDialog(text);
        return;
      case "name_locked":
        return;
      default:
        break;
    }
    if (local && frame.code === "unavailable" && local.autoRetried !== true) {
      // Not posted (PROTOCOL.md: `unavailable` is never delivered later), so sending it
      // again cannot double it. Once, quietly: a gateway restart looks like this.
      local.autoRetried = true;
      setLocalState(local, "queued");
      setTimeout(() => {
        if (local.state === "queued" && room.joinState === "ready" && isOpen()) resend(room, local);
      }, backoffDelay(1, BACKOFF, Math.random));
      return;
    }
    if (local) setLocalState(local, "failed", text);
    else notice(text);
  }

  function recordSkew(ts) {
    if (typeof ts !== "number") return;
    state.skewSamples.push(ts - Date.now());
    if (state.skewSamples.length > SKEW_SAMPLES) state.skewSamples.shift();
    state.skew = clockOffset(state.skewSamples);
  }

  // ---- name --------------------------------------------------------------------------
  function renderName() {
    const shown = accountName || state.serverName || state.name || "…";
    ui.nameButton.textContent = shown;
    ui.nameButton.title = accountName ? "Signed in as " + accountName : "Change your nickname";
    ui.nameButton.disabled = Boolean(accountName);
  }

  function openNameDialog(error) {
    ui.nameError.textContent = error || "";
    ui.nameError.hidden = !error;
    ui.nameInput.value = state.name || "";
    if (!ui.nameDialog.open) ui.nameDialog.showModal();
    ui.nameInput.focus();
  }

  function onNameSubmit(event) {
    event.preventDefault();
    const name = normalizeName(ui.nameInput.value);
    if (!name) {
      ui.nameError.textContent = errorText("bad_name");
      ui.nameError.hidden = false;
      ui.nameInput.focus();
      return;
    }
    state.name = name;
    storageSet(STORAGE_NAME, name);
    ui.nameDialog.close();
    renderName();
    if (isOpen()) sendFrame({ type: "hello", name: name });
    ui.input.focus();
  }

  // ---- composer and room form --------------------------------------------------------
  function onComposerKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  }

  function onComposerSubmit(event) {
    event.preventDefault();
    const room = state.rooms.get(state.active);
    const text = ui.input.value;
    if (!room || !text.trim()) return;
    if (Array.from(text).length > state.limits.max_text_chars) {
      notice(errorText("too_long", state.limits));
      return;
    }
    ui.input.value = "";
    resizeInput();
    submitText(room, text);
  }

  function resizeInput() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight, 200) + "px";
    const length = Array.from(ui.input.value).length; // characters, as the server counts
    const max = state.limits.max_text_chars;
    const show = length > max * 0.8;
    ui.counter.hidden = !show;
    if (show) ui.counter.textContent = length + " / " + max;
  }

  function onAddRoom(event) {
    event.preventDefault();
    const id = ui.addRoomInput.value.trim().toLowerCase().replace(/^#/, "");
    if (!isValidRoomId(id)) {
      ui.addRoomError.textContent = errorText("bad_room");
      ui.addRoomError.hidden = false;
      ui.addRoomInput.setAttribute("aria-invalid", "true");
      ui.addRoomInput.focus();
      return;
    }
    ui.addRoomError.hidden = true;
    ui.addRoomInput.removeAttribute("aria-invalid");
    ui.addRoomInput.value = "";
    addRoom(id, null, true);
  }

  function onGlobalKey(event) {
    // Alt+ArrowUp / Alt+ArrowDown: previous / next room.
    if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    const ids = Array.from(state.rooms.keys());
    const at = ids.indexOf(state.active);
    const next = ids[(at + (event.key === "ArrowDown" ? 1 : ids.length - 1)) % ids.length];
    event.preventDefault();
    activate(next, true);
  }

  // ---- start -------------------------------------------------------------------------
  function start() {
    const first = root.dataset.room;
    addRoom(
      first,
      {
        title: root.dataset.roomTitle || first,
        description: root.dataset.roomDescription || "",
        locked: root.dataset.roomLocked === "true",
        closed: root.dataset.roomClosed === "true",
      },
      false,
    );
    let saved = [];
    try {
      saved = JSON.parse(storageGet(STORAGE_ROOMS) || "[]");
    } catch (e) {
      saved = [];
    }
    if (Array.isArray(saved)) {
      for (const id of saved) if (isValidRoomId(id) && id !== first) addRoom(id, null, false);
    }
    activate(first, false);
    renderName();

    ui.composer.addEventListener("submit", onComposerSubmit);
    ui.input.addEventListener("keydown", onComposerKey);
    ui.input.addEventListener("input", resizeInput);
    ui.addRoom.addEventListener("submit", onAddRoom);
    ui.nameForm.addEventListener("submit", onNameSubmit);
    ui.nameButton.addEventListener("click", () => openNameDialog());
    ui.nameDialog.addEventListener("cancel", (event) => {
      if (!state.name) event.preventDefault(); // a name is needed once
    });
    ui.retryNow.addEventListener("click", () => {
      conn.attempt = 0;
      connect();
    });
    ui.logs.addEventListener("scroll", () => {
      const room = state.rooms.get(state.active);
      if (room) room.stick = nearEnd();
    });
    document.addEventListener("keydown", onGlobalKey);
    window.addEventListener("online", () => {
      if (conn.reconnectTimer !== null) connect();
    });
    setInterval(() => {
      tick();
      showReconnectCountdown();
    }, TICK_MS);

    if (!state.name && !accountName) openNameDialog();
    else ui.input.focus();
    connect();
  }

  start();
})();
