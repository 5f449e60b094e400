// The browser chat client. User text is only ever placed with textContent, never
// innerHTML, so a message like <img src=x onerror=alert(1)> shows up literally.
import type { HistoryItem, ServerFrame } from "../protocol/frames.ts";
import { ReconnectingSocket, type Refusal, type Status } from "./connection.ts";
import { hasMessage, pickLanguage, translator, type MessageKey } from "./i18n.ts";

const lang = pickLanguage(navigator.languages ?? [navigator.language]);
const t = translator(lang);
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

const app = $("app");
const loginForm = $<HTMLFormElement>("login-form");
const nameInput = $<HTMLInputElement>("name-input");
const roomInput = $<HTMLInputElement>("room-input");
const loginError = $("login-error");
const channelsList = $("channels");
const membersList = $("members");
const messagesList = $("messages");
const typingLine = $("typing");
const composer = $<HTMLFormElement>("composer");
const textInput = $<HTMLTextAreaElement>("text-input");
const joinForm = $<HTMLFormElement>("join-form");
const joinInput = $<HTMLInputElement>("join-input");
const statusBox = $("status");
const statusText = $("status-text");
const channelName = $("channel-name");
const onlineText = $("online");

for (const el of document.querySelectorAll<HTMLElement>("[data-i18n]")) el.textContent = t(el.dataset.i18n as MessageKey);
for (const el of document.querySelectorAll<HTMLInputElement>("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder as MessageKey);

// ---- state ---------------------------------------------------------------------------

type Entry = { kind: "message"; item: HistoryItem; pending?: boolean } | { kind: "notice"; text: string; error?: boolean };

interface Channel {
  key: string; // "#room" or "@namekey"
  kind: "room" | "private";
  name: string;
  entries: Entry[];
  seen: Set<string>;
  lastId: number | undefined;
  /** The history epoch `lastId` belongs to: passed back with it, so the server can say if the history was lost. */
  epoch: string | undefined;
  unread: number;
  members: string[];
  online: number;
}

const pageParams = new URL(location.href).searchParams;
const token = pageParams.get("token");
let me = "";
let firstRoom = "lobby";
let everConnected = false;
const channels = new Map<string, Channel>();
let current = "";
let refCounter = 0;
const typers = new Map<string, ReturnType<typeof setTimeout>>();
let lastTypingSent = 0;
const lastWho = new Map<string, number>();

nameInput.value = pageParams.get("name") ?? localStorage.getItem("bunchat.name") ?? "";
roomInput.value = pageParams.get("room") ?? "lobby";

function channel(key: string, kind: Channel["kind"], name: string): Channel {
  let c = channels.get(key);
  if (!c) {
    c = { key, kind, name, entries: [], seen: new Set(), lastId: undefined, epoch: undefined, unread: 0, members: [], online: 0 };
    channels.set(key, c);
    renderChannels();
  }
  return c;
}

const roomKey = (room: string) => `#${room}`;
/** Where the page keeps the resume key of the person it is (per name: one browser, several people). */
const resumeSlot = (name: string) => `bunchat.resume.${name.toLowerCase()}`;
const privateKey = (name: string) => `@${name.toLowerCase()}`;
const itemKey = (item: HistoryItem) => `${item.id}:${item.ts}:${item.from}`;

// ---- connection ----------------------------------------------------------------------

const socket = new ReconnectingSocket(
  () => {
    const params: Record<string, string> = { name: me, room: firstRoom };
    const first = channels.get(roomKey(firstRoom));
    if (first?.lastId !== undefined) params.since = String(first.lastId);
    if (first?.epoch !== undefined) params.epoch = first.epoch;
    return params;
  },
  token,
  () => localStorage.getItem(resumeSlot(me)),
  {
    frame: onFrame,
    status: showStatus,
    refused: onRefused,
    closed: (code, reason) => {
      if (code === 1008) notice(t("closedAbuse"), true);
      if (code === 1009) notice(t("closedTooBig"), true);
      // Kicked or banned by a moderator (server API): say why, and do not come back by itself.
      if (code === 4001 || code === 4003) {
        notice(t(code === 4001 ? "closedKicked" : "closedBanned", { reason }), true);
        socket.stop();
      }
    },
  },
);

function showStatus(status: Status, retryInMs?: number): void {
  statusBox.dataset.status = status;
  const key: Record<Status, MessageKey> = { online: "statusOnline", connecting: "statusConnecting", offline: "statusOffline", closed: "statusClosed" };
  statusText.textContent = t(key[status], { s: Math.ceil((retryInMs ?? 0) / 1000) });
}

function onRefused(refusal: Refusal, willRetry: boolean): void {
  const key = `refused.${refusal.error}`;
  const text = t(hasMessage(key) ? key : "refused.unknown", { message: refusal.message });
  if (!everConnected) {
    loginError.textContent = text;
    if (!willRetry || refusal.error === "name_taken") {
      socket.stop();
      app.dataset.state = "login";
    }
  } else {
    notice(text, !willRetry);
  }
}

function send(frame: Record<string, unknown>): boolean {
  return socket.send(JSON.stringify(frame));
}

function onFrame(f: ServerFrame): void {
  switch (f.type) {
    case "welcome": {
      const reconnect = everConnected;
      everConnected = true;
      me = f.you.name;
      localStorage.setItem("bunchat.name", me);
      if (f.resume) localStorage.setItem(resumeSlot(me), f.resume);
      app.dataset.state = "chat";
      loginError.textContent = "";
      const c = channel(roomKey(f.room), "room", f.room);
      c.members = f.members;
      c.online = f.online;
      c.epoch = f.epoch;
      if (f.incomplete) pushEntry(c, { kind: "notice", text: t("historyIncomplete") });
      addItems(c, f.history);
      if (!current) switchTo(c.key);
      if (reconnect) {
        // Rooms beyond the first and private conversations catch up here.
        for (const other of channels.values()) {
          if (other.kind === "room" && other.key !== c.key) send({ type: "join", room: other.name, ...(other.lastId !== undefined ? { since: other.lastId } : {}), ...(other.epoch !== undefined ? { epoch: other.epoch } : {}) });
          if (other.kind === "private") send({ type: "history", with: other.name, limit: 100 });
        }
        notice(t("reconnected"));
      }
      renderAll();
      break;
    }
    case "joined": {
      const c = channel(roomKey(f.room), "room", f.room);
      c.members = f.members;
      c.online = f.online;
      c.epoch = f.epoch;
      if (f.incomplete) pushEntry(c, { kind: "notice", text: t("historyIncomplete") });
      addItems(c, f.history);
      if (f.more && c.lastId !== undefined) send({ type: "join", room: f.room, since: c.lastId, epoch: f.epoch });
      renderAll();
      break;
    }
    case "left": {
      channels.delete(roomKey(f.room));
      if (current === roomKey(f.room)) current = channels.keys().next().value ?? "";
      renderAll();
      break;
    }
    case "message": {
      addItems(channel(roomKey(f.room), "room", f.room), [f]);
      break;
    }
    case "private": {
      const other = f.from === me ? f.to : f.from;
      addItems(channel(privateKey(other), "private", other), [f]);
      break;
    }
    case "history": {
      const c = f.with !== undefined ? channel(privateKey(f.with), "private", f.with) : channel(roomKey(f.room ?? ""), "room", f.room ?? "");
      addItems(c, f.messages);
      break;
    }
    case "presence": {
      const c = channels.get(roomKey(f.room));
      if (!c) break;
      c.members = c.members.filter((m) => !f.left.includes(m));
      for (const name of f.joined) if (!c.members.includes(name)) c.members.push(name);
      c.online = f.online;
      // Too many names to list: refresh the roster, but at most every 10 s per room, so a
      // join storm in a big room does not turn into a storm of `who` requests.
      if (f.truncated && Date.now() - (lastWho.get(f.room) ?? 0) > 10_000) {
        lastWho.set(f.room, Date.now());
        send({ type: "who", room: f.room });
      }
      const others = (names: string[]) => names.filter((n) => n !== me);
      if (others(f.joined).length) pushEntry(c, { kind: "notice", text: t("joinedRoom", { names: others(f.joined).join(", ") }) });
      if (others(f.left).length) pushEntry(c, { kind: "notice", text: t("leftRoom", { names: others(f.left).join(", ") }) });
      if (c.key === current) renderHeaderAndMembers();
      break;
    }
    case "nick": {
      if (f.from === me && f.name !== me) {
        // The person keeps their resume key under their new name.
        const resume = localStorage.getItem(resumeSlot(me));
        if (resume) {
          localStorage.setItem(resumeSlot(f.name), resume);
          localStorage.removeItem(resumeSlot(me));
        }
        me = f.name;
      }
      const c = channels.get(roomKey(f.room));
      if (c) {
        c.members = c.members.map((m) => (m === f.from ? f.name : m));
        pushEntry(c, { kind: "notice", text: t("renamed", { from: f.from, name: f.name }) });
        if (c.key === current) renderHeaderAndMembers();
      }
      break;
    }
    case "typing": {
      if (f.from === me || current !== roomKey(f.room)) break;
      clearTimeout(typers.get(f.from));
      typers.set(f.from, setTimeout(() => {
        typers.delete(f.from);
        renderTyping();
      }, 3000));
      renderTyping();
      break;
    }
    case "who": {
      const c = channels.get(roomKey(f.room));
      if (c) {
        c.members = f.members;
        c.online = f.online;
        if (c.key === current) renderHeaderAndMembers();
      }
      break;
    }
    case "error": {
      const key = `error.${f.code}`;
      notice(t(hasMessage(key) ? key : "error.generic", { message: f.message }), true);
      if (f.ref !== undefined) dropPending(f.ref);
      break;
    }
    case "system": {
      notice(/shutting down/.test(f.text) ? t("shuttingDown") : f.text);
      break;
    }
    case "deleted": {
      // A moderator deleted a message: hide it.
      const c = channels.get(roomKey(f.room));
      if (!c) break;
      c.entries = c.entries.filter((e) => e.kind !== "message" || e.pending || e.item.type !== "message" || e.item.id !== f.id);
      if (c.key === current) renderMessages();
      break;
    }
    case "pong":
      break;
  }
}

function addItems(c: Channel, items: HistoryItem[]): void {
  let added = false;
  for (const item of items) {
    const key = itemKey(item);
    if (c.seen.has(key)) continue;
    c.seen.add(key);
    if (item.ref !== undefined && item.from === me) dropPending(item.ref);
    c.lastId = item.id;
    insertSorted(c, { kind: "message", item });
    added = true;
  }
  if (added && c.key !== current) {
    c.unread += items.length;
    renderChannels();
  }
}

/** Keep messages in id order (a replay can arrive after live messages); pending sends stay last. */
function insertSorted(c: Channel, entry: Entry & { kind: "message" }): void {
  const entries = c.entries;
  let i = entries.length;
  while (i > 0) {
    const prev = entries[i - 1]!;
    if (prev.kind === "notice") break; // notices are chronological: never move before one
    if (!prev.pending && prev.item.id <= entry.item.id) break;
    i--;
  }
  if (i === entries.length) return pushEntry(c, entry);
  entries.splice(i, 0, entry);
  if (c.key === current) renderMessages();
}

function pushEntry(c: Channel, entry: Entry): void {
  c.entries.push(entry);
  if (c.entries.length > 2000) c.entries.splice(0, c.entries.length - 2000);
  if (c.key === current) {
    messagesList.append(renderEntry(entry));
    scrollToEnd();
  }
}

function notice(text: string, error = false): void {
  const c = channels.get(current);
  if (c) pushEntry(c, { kind: "notice", text, error });
  else loginError.textContent = text;
}

const pendingRefs = new Map<string, { channel: Channel; entry: Entry }>();

function dropPending(ref: string | number): void {
  const pending = pendingRefs.get(String(ref));
  if (!pending) return;
  pendingRefs.delete(String(ref));
  pending.channel.entries = pending.channel.entries.filter((e) => e !== pending.entry);
  if (pending.channel.key === current) renderMessages();
}

// ---- rendering -----------------------------------------------------------------------

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderEntry(entry: Entry): HTMLElement {
  if (entry.kind === "notice") return el("li", entry.error ? "notice error" : "notice", entry.text);
  const m = entry.item;
  const li = el("li", "msg");
  if (m.from === me) li.classList.add("mine");
  if (m.type === "private") li.classList.add("private");
  if (entry.pending) li.classList.add("pending");
  li.dataset.id = String(m.id);
  const meta = el("div", "meta");
  meta.append(el("span", "from", m.from));
  if (m.type === "private") {
    meta.append(el("span", "private-tag", t("privateTag")));
    if (m.from === me) meta.append(el("span", "to", t("privateTo", { name: m.to })));
  }
  const time = el("time", "time", new Date(m.ts).toLocaleTimeString(lang === "zh" ? "zh-CN" : undefined, { hour: "2-digit", minute: "2-digit" }));
  time.dateTime = new Date(m.ts).toISOString();
  meta.append(time);
  li.append(meta, el("div", "text", m.text));
  return li;
}

function renderMessages(): void {
  const c = channels.get(current);
  messagesList.replaceChildren(...(c ? c.entries.map(renderEntry) : []));
  scrollToEnd();
}

function scrollToEnd(): void {
  messagesList.scrollTop = messagesList.scrollHeight;
}

function renderChannels(): void {
  const items: HTMLElement[] = [];
  for (const c of channels.values()) {
    const li = el("li");
    const button = el("button", c.kind === "private" ? "private-channel" : "");
    button.type = "button";
    button.append(el("span", "", c.kind === "room" ? `# ${c.name}` : `@ ${c.name}`));
    if (c.unread > 0) button.append(el("span", "badge", String(c.unread)));
    button.setAttribute("aria-current", String(c.key === current));
    button.addEventListener("click", () => switchTo(c.key));
    li.append(button);
    items.push(li);
  }
  channelsList.replaceChildren(...items);
}

function renderHeaderAndMembers(): void {
  const c = channels.get(current);
  channelName.textContent = c ? (c.kind === "room" ? `# ${c.name}` : `@ ${c.name}`) : "";
  onlineText.textContent = c?.kind === "room" ? t("online", { n: c.online }) : "";
  const room = c?.kind === "room" ? c : channels.get(roomKey(firstRoom));
  const items = (room?.members ?? []).map((name) => {
    const li = el("li");
    const button = el("button", "", name === me ? `${name} ★` : name);
    button.type = "button";
    button.disabled = name === me;
    button.addEventListener("click", () => switchTo(channel(privateKey(name), "private", name).key));
    li.append(button);
    return li;
  });
  membersList.replaceChildren(...items);
}

function renderTyping(): void {
  const names = [...typers.keys()];
  typingLine.textContent = names.length ? t("typing", { names: names.join(", ") }) : "";
}

function renderAll(): void {
  renderChannels();
  renderHeaderAndMembers();
  renderMessages();
}

function switchTo(key: string): void {
  current = key;
  const c = channels.get(key);
  if (c) c.unread = 0;
  typers.clear();
  renderTyping();
  renderAll();
  textInput.focus();
}

// ---- input ---------------------------------------------------------------------------

loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  me = nameInput.value.trim();
  firstRoom = roomInput.value.trim().toLowerCase() || "lobby";
  loginError.textContent = "";
  socket.start();
});

function sendText(): void {
  const text = textInput.value;
  if (text.trim() === "") return;
  const c = channels.get(current);
  if (!c) return;
  const ref = `c${++refCounter}`;
  const frame = c.kind === "room" ? { type: "chat", room: c.name, text, ref } : { type: "private", to: c.name, text, ref };
  if (!send(frame)) return; // offline: keep the text in the box
  const entry: Entry = { kind: "message", pending: true, item: c.kind === "room"
    ? { type: "message", id: Number.MAX_SAFE_INTEGER, room: c.name, from: me, text, ts: Date.now() }
    : { type: "private", id: Number.MAX_SAFE_INTEGER, from: me, to: c.name, text, ts: Date.now() } };
  pendingRefs.set(ref, { channel: c, entry });
  pushEntry(c, entry);
  textInput.value = "";
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  sendText();
});

textInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendText();
  }
});

textInput.addEventListener("input", () => {
  const c = channels.get(current);
  const now = Date.now();
  if (c?.kind === "room" && now - lastTypingSent > 2000) {
    lastTypingSent = now;
    send({ type: "typing", room: c.name });
  }
});

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = joinInput.value.trim().toLowerCase();
  if (!room) return;
  joinInput.value = "";
  const existing = channels.get(roomKey(room));
  if (existing) return switchTo(existing.key);
  send({ type: "join", room });
  current = roomKey(room);
});

showStatus("closed");
nameInput.focus();
