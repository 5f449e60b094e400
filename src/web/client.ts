// The browser chat page, built on bunchat/client (src/client): the SDK owns the connection
// (reconnect, resume key, recovery without gaps or duplicates, the queue while offline);
// this file owns what a person sees. User text is only ever placed as text nodes
// (textContent, or linkify's text nodes and safe links), never as HTML, so a message like
// <img src=x onerror=alert(1)> shows up literally.
import { connect, type ChatClient, type ChatError, type HistoryItem, type MessageFrame, type PrivateFrame, type Refusal, type Status } from "../client/index.ts";
import { initAttention, privateArrived } from "./attention.ts";
import { Channel, type Entry } from "./channels.ts";
import { hasMessage, pickLanguage, translator, type MessageKey } from "./i18n.ts";
import { $, applyWords, el, locale } from "./dom.ts";
import { linkify } from "./linkify.ts";
import { clearTab, forgetPerson, knownPeople, personNamed, rememberPerson, saveTab, tabRecord, type PersonRecord, type TabRecord } from "./storage.ts";
import { CLOSE_BANNED, CLOSE_KICKED } from "../protocol/frames.ts";

const lang = pickLanguage(navigator.languages ?? [navigator.language]);
const t = translator(lang);
document.documentElement.lang = locale(lang) ?? "en";



const app = $("app");
const loginForm = $<HTMLFormElement>("login-form");
const nameInput = $<HTMLInputElement>("name-input");
const roomInput = $<HTMLInputElement>("room-input");
const loginError = $("login-error");
const resumeChoice = $("resume-choice");
const knownList = $("known-people");
const roomsList = $("channels");
const conversationsList = $("conversations");
const noConversations = $("no-conversations");
const membersList = $("members");
const membersRoom = $("members-room");
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
const myName = $("my-name");
const nickButton = $<HTMLButtonElement>("nick-button");
const nickForm = $<HTMLFormElement>("nick-form");
const nickInput = $<HTMLInputElement>("nick-input");
const roomsToggle = $<HTMLButtonElement>("rooms-toggle");
const membersToggle = $<HTMLButtonElement>("members-toggle");
const unreadTotal = $("unread-total");

applyWords((key) => t(key as MessageKey));

// ---- state ---------------------------------------------------------------------------

const pageParams = new URL(location.href).searchParams;
const token = pageParams.get("token");
let chat: ChatClient | null = null;
let me = "";
let signedIn = false;
let reconnecting = false;
const channels = new Map<string, Channel>();
let current = "";
/** Who is typing, per room: cleared after 3 s, or when their message arrives. */
const typers = new Map<string, Map<string, ReturnType<typeof setTimeout>>>();
let lastTypingSent = 0;

const roomKey = (room: string) => `#${room}`;
const privateKey = (name: string) => `@${name.toLowerCase()}`;
const label = (c: Channel) => (c.kind === "room" ? `# ${c.name}` : `@ ${c.name}`);

function channel(key: string, kind: Channel["kind"], name: string): Channel {
  let c = channels.get(key);
  if (!c) {
    c = new Channel(key, kind, name);
    channels.set(key, c);
    renderChannels();
  }
  return c;
}

const roomChannel = (room: string) => channel(roomKey(room), "room", room);
const privateChannel = (name: string) => channel(privateKey(name), "private", name);

// ---- signing in ----------------------------------------------------------------------

/** Who to sign in as, with what: a tab's record has exactly that shape. */
type SignIn = TabRecord;

function start(signIn: SignIn): void {
  chat?.close();
  me = signIn.name;
  loginError.textContent = "";
  const rooms = signIn.rooms.length ? signIn.rooms : ["lobby"];
  // Listed at once, in their order; the connection fills them (or drops a room it cannot enter).
  for (const name of rooms) roomChannel(name);
  for (const name of signIn.conversations) privateChannel(name);
  const client = connect(socketUrl(), {
    name: signIn.name,
    ...(token ? { token } : {}),
    ...(signIn.resume && !token ? { resume: signIn.resume } : {}),
    // Each room's recent tail (no cursor): the page starts empty after a reload.
    restore: { rooms: rooms.map((name) => ({ name })), conversations: signIn.conversations, ...(signIn.inbox !== undefined ? { inbox: signIn.inbox } : {}) },
  });
  chat = client;
  if (signIn.current) current = signIn.current;
  wire(client);
}

/** The server's socket, on this page's origin (the client turns http(s) into ws(s)). */
function socketUrl(): string {
  return new URL("/ws", location.href).href;
}

/** Remember this tab (reload) and this person (other tabs) after anything that changes them. */
function persist(): void {
  if (!chat || !signedIn) return;
  const snap = chat.snapshot();
  const conversations = [...channels.values()].filter((c) => c.kind === "private").map((c) => c.name);
  const rooms = snap.rooms.map((r) => r.name);
  saveTab({ name: me, ...(snap.resume ? { resume: snap.resume } : {}), rooms, conversations, ...(snap.inbox !== undefined ? { inbox: snap.inbox } : {}), current });
  if (snap.resume && !token) rememberPerson({ name: me, resume: snap.resume, rooms, conversations });
}

function showLogin(): void {
  app.dataset.state = "login";
  const people = token ? [] : knownPeople();
  resumeChoice.hidden = people.length === 0;
  knownList.replaceChildren(...people.map(continueButton));
  nameInput.value = pageParams.get("name") ?? "";
  roomInput.value = pageParams.get("room") ?? "lobby";
  (people.length ? knownList.querySelector("button") ?? nameInput : nameInput).focus();
}

function continueButton(person: PersonRecord): HTMLElement {
  const li = el("li");
  const button = el("button", "continue-as", t("continueAs", { name: person.name }));
  button.type = "button";
  button.addEventListener("click", () => start({ name: person.name, resume: person.resume, rooms: person.rooms, conversations: person.conversations }));
  li.append(button);
  return li;
}

loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  const room = roomInput.value.trim().toLowerCase() || "lobby";
  // A name this browser already holds comes back as that person (with its key).
  const known = token ? undefined : personNamed(name);
  start({ name, ...(known ? { resume: known.resume } : {}), rooms: [room, ...(known?.rooms ?? []).filter((r) => r !== room)], conversations: known?.conversations ?? [] });
});

// ---- the connection's events ---------------------------------------------------------

function wire(client: ChatClient): void {
  const live = () => chat === client;
  client.on("status", (status, detail) => live() && showStatus(status, detail.retryInMs));
  client.on("welcome", (welcome, reconnect) => {
    if (!live()) return;
    me = welcome.you.name;
    signedIn = true;
    reconnecting = reconnect;
    app.dataset.state = "chat";
    loginError.textContent = "";
    if (!channels.has(current)) current = roomKey(welcome.room);
    if (reconnect) notice(t("reconnected"));
    renderAll();
    openCurrent();
    persist();
  });
  client.on("resume", () => live() && persist());
  client.on("joined", (room) => {
    if (!live()) return;
    roomChannel(room.name);
    if (current === roomKey(room.name)) renderHeaderAndMembers();
    persist();
  });
  client.on("left", (room) => {
    if (!live()) return;
    const c = channels.get(roomKey(room));
    channels.delete(roomKey(room));
    typers.delete(room);
    if (c && current === c.key) {
      current = channels.keys().next().value ?? "";
      notice(t("leftRoomYou", { room }));
    }
    renderAll();
    persist();
  });
  client.on("message", (m, replay) => live() && onMessage(m, replay));
  client.on("private", (m, replay) => live() && onPrivate(m, replay));
  client.on("presence", (p) => {
    if (!live()) return;
    const c = channels.get(roomKey(p.room));
    if (!c) return;
    const others = (names: string[]) => names.filter((n) => n !== me);
    if (others(p.joined).length) push(c, { kind: "notice", text: t("joinedRoom", { names: others(p.joined).join(", ") }) });
    if (others(p.left).length) push(c, { kind: "notice", text: t("leftRoom", { names: others(p.left).join(", ") }) });
    if (c.key === current) renderHeaderAndMembers();
  });
  client.on("typing", (f) => live() && onTyping(f.room, f.from));
  client.on("nick", (change) => {
    if (!live()) return;
    if (change.self) {
      const former = me;
      me = change.name;
      if (former !== me) {
        const resume = client.resumeKey;
        if (resume && !token) rememberPerson({ name: me, resume, rooms: [...client.rooms.keys()], conversations: [...client.conversations] }, former);
        notice(t("renamedYou", { name: me }));
      }
    } else {
      const conversation = channels.get(privateKey(change.from));
      if (conversation) {
        channels.delete(conversation.key);
        conversation.name = change.name;
        const key = privateKey(change.name);
        channels.set(key, Object.assign(conversation, { key }));
        if (current === privateKey(change.from)) current = key;
      }
    }
    const c = channels.get(roomKey(change.room));
    if (c && !(change.self && change.from === change.name)) push(c, { kind: "notice", text: t("renamed", { from: change.from, name: change.name }) });
    renderAll();
    persist();
  });
  client.on("incomplete", (gap) => {
    if (!live()) return;
    const c = gap.room !== undefined ? channels.get(roomKey(gap.room)) : channels.get(current);
    if (gap.reason === "epoch" && c) c.forgetIds();
    if (c) push(c, { kind: "notice", text: t("historyIncomplete") });
  });
  client.on("refused", (refusal, willRetry) => live() && onRefused(refusal, willRetry));
  client.on("error", (error) => live() && notice(errorText(error), true));
  client.on("system", (text, room) => {
    if (!live()) return;
    // An announcement to one room goes in that room; one to everyone where the person is.
    const c = room !== undefined ? channels.get(roomKey(room)) : undefined;
    if (c) push(c, { kind: "notice", text });
    else notice(/shutting down/.test(text) ? t("shuttingDown") : text);
  });
  client.on("deleted", (room, id) => {
    if (!live()) return;
    const c = channels.get(roomKey(room));
    if (c?.delete(id)) changed(c);
  });
  client.on("disconnected", (code, reason) => {
    if (!live()) return;
    if (code === 1008) notice(t("closedAbuse"), true);
    if (code === 1009) notice(t("closedTooBig"), true);
    // Kicked or banned by a moderator (server API): the client stays closed; say why.
    if (code === CLOSE_KICKED) notice(t("closedKicked", { reason }), true);
    if (code === CLOSE_BANNED) notice(t("closedBanned", { reason }), true);
  });
}

function showStatus(status: Status, retryInMs?: number): void {
  statusBox.dataset.status = status;
  const key: Record<Status, MessageKey> = { online: "statusOnline", connecting: "statusConnecting", offline: "statusOffline", closed: "statusClosed" };
  statusText.textContent = t(key[status], { s: Math.ceil((retryInMs ?? 0) / 1000) });
  renderHeaderAndMembers();
}

function onRefused(refusal: Refusal, willRetry: boolean): void {
  const key = `refused.${refusal.error}`;
  const text = t(hasMessage(key) ? key : "refused.unknown", { message: refusal.message });
  if (refusal.error === "bad_resume" || (refusal.error === "name_taken" && signedIn)) forgetPerson(me);
  if (!signedIn || !willRetry) {
    if (!willRetry) {
      chat = null;
      signedIn = false;
      clearTab();
      showLogin();
    }
    loginError.textContent = text;
  } else {
    notice(text, !willRetry);
  }
}

function errorText(error: ChatError): string {
  const key = `error.${error.code}`;
  return t(hasMessage(key) ? key : "error.generic", { message: error.message });
}

function onMessage(m: MessageFrame, replay: boolean): void {
  const c = roomChannel(m.room);
  stopTyping(m.room, m.from);
  if (!c.add(m)) return;
  if (c.key !== current && m.from !== me && (!replay || reconnecting)) c.unread++;
  changed(c);
}

function onPrivate(m: PrivateFrame, replay: boolean): void {
  const mine = chat!.sentByMe(m); // only a live client delivers (see wire)
  const c = privateChannel(mine ? m.to : m.from);
  if (!c.add(m)) return;
  if (!mine) {
    if (c.key !== current) c.unread++;
    privateArrived((n) => t("unreadTitle", { n }), { title: t("notifyTitle", { name: m.from }), body: m.text });
  }
  changed(c);
  if (!replay) persist();
}

function onTyping(room: string, from: string): void {
  let inRoom = typers.get(room);
  if (!inRoom) typers.set(room, (inRoom = new Map()));
  clearTimeout(inRoom.get(from));
  inRoom.set(from, setTimeout(() => stopTyping(room, from), 3000));
  renderTyping();
}

/** Their message arrived (or 3 s passed): they are not typing any more. */
function stopTyping(room: string, from: string): void {
  const inRoom = typers.get(room);
  if (!inRoom?.has(from)) return;
  clearTimeout(inRoom.get(from));
  inRoom.delete(from);
  renderTyping();
}

// ---- channels ------------------------------------------------------------------------

function push(c: Channel, entry: Entry): void {
  if (entry.kind === "notice") c.notice(entry.text, entry.error);
  changed(c);
}

function notice(text: string, error = false): void {
  const c = channels.get(current);
  if (c) push(c, { kind: "notice", text, error });
  else loginError.textContent = text;
}

/** A channel's entries changed: redraw it if it is on screen, else its unread badge. */
function changed(c: Channel, mode: "end" | "keep" | "older" = "keep"): void {
  if (c.key === current) renderMessages(mode);
  else renderChannels();
}

function switchTo(key: string): void {
  current = key;
  const c = channels.get(key);
  if (c) c.unread = 0;
  showPanel("");
  renderTyping();
  renderAll();
  openCurrent();
  persist();
  textInput.focus();
}

/** A private conversation opened for the first time shows its history. */
function openCurrent(): void {
  const c = channels.get(current);
  if (c && c.kind === "private" && !c.opened && chat) {
    c.opened = true;
    void loadOlder(c);
  }
}

/** The next older page of a channel's history (on open, and when scrolled to the top). */
async function loadOlder(c: Channel): Promise<void> {
  if (!chat || c.loading || c.exhausted) return;
  c.loading = true;
  const first = c.oldestId() === undefined;
  try {
    c.older ??= chat.history(c.kind === "room" ? { room: c.name } : { with: c.name }, { pageSize: 50, ...(c.oldestId() !== undefined ? { before: c.oldestId()! } : {}) });
    const page = await c.older.next();
    if (page.done) c.exhausted = true;
    else for (const item of page.value) c.add(item, true);
  } catch (error) {
    c.exhausted = true;
    if ((error as ChatError).code !== "history_off") push(c, { kind: "notice", text: errorText(error as ChatError), error: true });
  } finally {
    c.loading = false;
  }
  if (c.key === current) renderMessages(first ? "end" : "older");
}

// ---- rendering -----------------------------------------------------------------------

function renderEntry(entry: Entry): HTMLElement {
  if (entry.kind === "notice") return el("li", entry.error ? "notice error" : "notice", entry.text);
  const m: HistoryItem = entry.item;
  const li = el("li", "msg");
  if (m.from === me) li.classList.add("mine");
  if (m.type === "private") li.classList.add("private");
  if (entry.pending) li.classList.add("pending");
  else li.dataset.id = String(m.id);
  const meta = el("div", "meta");
  meta.append(el("span", "from", m.from));
  if (m.bot) meta.append(el("span", "bot-tag", t("botTag")));
  if (m.type === "private") {
    meta.append(el("span", "private-tag", t("privateTag")));
    if (m.from === me) meta.append(el("span", "to", t("privateTo", { name: m.to })));
  }
  const time = el("time", "time", entry.pending ? t("sending") : new Date(m.ts).toLocaleTimeString(locale(lang), { hour: "2-digit", minute: "2-digit" }));
  time.dateTime = new Date(m.ts).toISOString();
  meta.append(time);
  const text = el("div", "text");
  text.append(linkify(m.text));
  li.append(meta, text);
  return li;
}

/**
 * Each entry's element, drawn once per generation: a message arriving then costs one new
 * element, not a redraw of the whole list (links, times). renderAll starts a generation
 * (a switch, a rename, a welcome), so everything is drawn afresh there.
 */
const drawn = new WeakMap<Entry, { generation: number; node: HTMLElement }>();
let generation = 0;

function nodeFor(entry: Entry): HTMLElement {
  const known = drawn.get(entry);
  if (known?.generation === generation) return known.node;
  const node = renderEntry(entry);
  drawn.set(entry, { generation, node });
  return node;
}

/**
 * Make `nodes` the list's children. When entries were only added at the end or dropped
 * from the start (the usual case: a message arrived), only those are touched.
 */
function showNodes(list: HTMLElement, nodes: HTMLElement[]): void {
  const have = list.children;
  const skip = nodes.length > 0 ? Array.prototype.indexOf.call(have, nodes[0]) : -1;
  const kept = have.length - skip;
  if (skip >= 0 && kept <= nodes.length && nodes.slice(0, kept).every((node, i) => have[skip + i] === node)) {
    for (let i = 0; i < skip; i++) list.firstElementChild!.remove();
    list.append(...nodes.slice(kept));
    return;
  }
  list.replaceChildren(...nodes);
}

function renderMessages(mode: "end" | "keep" | "older" = "keep"): void {
  const c = channels.get(current);
  const fromBottom = messagesList.scrollHeight - messagesList.scrollTop;
  const atEnd = fromBottom - messagesList.clientHeight < 48;
  showNodes(messagesList, c ? c.entries.map(nodeFor) : []);
  if (mode === "older") messagesList.scrollTop = messagesList.scrollHeight - fromBottom;
  else if (mode === "end" || atEnd) messagesList.scrollTop = messagesList.scrollHeight;
}

function channelItem(c: Channel): HTMLElement {
  const li = el("li");
  const open = el("button", "open");
  open.type = "button";
  open.append(el("span", "label", label(c)));
  if (c.unread > 0) open.append(el("span", "badge", String(c.unread)));
  open.setAttribute("aria-current", String(c.key === current));
  open.addEventListener("click", () => switchTo(c.key));
  li.append(open);
  if (c.kind === "room") {
    const leave = el("button", "leave", "×");
    leave.type = "button";
    leave.title = t("leaveRoom", { room: c.name });
    leave.setAttribute("aria-label", leave.title);
    leave.addEventListener("click", () => void chat?.leave(c.name).catch((e: ChatError) => notice(errorText(e), true)));
    li.append(leave);
  }
  return li;
}

function renderChannels(): void {
  const all = [...channels.values()];
  roomsList.replaceChildren(...all.filter((c) => c.kind === "room").map(channelItem));
  const conversations = all.filter((c) => c.kind === "private");
  conversationsList.replaceChildren(...conversations.map(channelItem));
  noConversations.hidden = conversations.length > 0;
  myName.textContent = me;
  // At phone width the list is a closed drawer: its toggle carries the unread total.
  const unread = all.reduce((n, c) => n + c.unread, 0);
  unreadTotal.hidden = unread === 0;
  unreadTotal.textContent = String(unread);
}

function renderHeaderAndMembers(): void {
  const c = channels.get(current);
  channelName.textContent = c ? label(c) : "";
  // Offline, a member count is stale: say so instead.
  const offline = chat?.status !== "online";
  onlineText.classList.toggle("offline", offline && signedIn);
  onlineText.textContent = !signedIn ? "" : offline ? t("offlineHeader") : c?.kind === "room" ? t("online", { n: chat?.rooms.get(c.name)?.online ?? 0 }) : c ? t("privateHeader") : "";
  const room = c?.kind === "room" ? c.name : [...(chat?.rooms.keys() ?? [])][0];
  membersRoom.textContent = room ? `# ${room}` : "";
  const members = [...(room ? chat?.rooms.get(room)?.members ?? [] : [])].sort((a, b) => (a === me ? -1 : b === me ? 1 : a.localeCompare(b)));
  membersList.replaceChildren(...members.map((name) => {
    const li = el("li");
    const button = el("button");
    button.type = "button";
    button.append(el("span", "name", name));
    if (name === me) {
      button.disabled = true;
      button.append(el("span", "you-tag", t("youTag")));
    } else {
      button.append(el("span", "pm-icon", "✉"));
      button.title = t("membersHint");
      button.addEventListener("click", () => switchTo(privateChannel(name).key));
    }
    li.append(button);
    return li;
  }));
}

function renderTyping(): void {
  const c = channels.get(current);
  const names = c?.kind === "room" ? [...(typers.get(c.name)?.keys() ?? [])] : [];
  typingLine.textContent = names.length ? t("typing", { names: names.join(", ") }) : "";
}

function renderAll(): void {
  generation++;
  renderChannels();
  renderHeaderAndMembers();
  renderMessages("end");
  renderTyping();
}

// ---- input ---------------------------------------------------------------------------

function sendText(): void {
  const text = textInput.value;
  const c = channels.get(current);
  if (text.trim() === "" || !c || !chat) return;
  const item: HistoryItem = c.kind === "room"
    ? { type: "message", id: Number.MAX_SAFE_INTEGER, room: c.name, from: me, text, ts: Date.now() }
    : { type: "private", id: Number.MAX_SAFE_INTEGER, from: me, to: c.name, text, ts: Date.now() };
  const pending = c.addPending(item);
  textInput.value = "";
  lastTypingSent = 0; // the next keystroke starts a new typing notice
  changed(c, "end");
  // The SDK queues it while offline and resolves once the server stored it; the stored
  // copy arrives as a message/private event (before this resolves) and replaces it.
  const sent: Promise<unknown> = c.kind === "room" ? chat.send(text, { room: c.name }) : chat.private(c.name, text);
  sent.then(
    () => {
      c.remove(pending);
      changed(c);
    },
    (error: ChatError) => {
      c.remove(pending);
      push(c, { kind: "notice", text: t("messageFailed", { message: errorText(error) }), error: true });
    },
  );
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
    chat?.typing(c.name);
  }
});

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = joinInput.value.trim().toLowerCase();
  if (!room || !chat) return;
  joinInput.value = "";
  if (channels.has(roomKey(room))) return switchTo(roomKey(room));
  chat.join(room).then(() => switchTo(roomKey(room)), (e: ChatError) => notice(errorText(e), true));
});

nickButton.addEventListener("click", () => {
  nickForm.hidden = false;
  nickInput.value = me;
  nickInput.select();
  nickInput.focus();
});
$("nick-cancel").addEventListener("click", () => (nickForm.hidden = true));
nickForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = nickInput.value.trim();
  if (!name || !chat) return;
  chat.nick(name).then(() => (nickForm.hidden = true), (e: ChatError) => notice(errorText(e), true));
});

messagesList.addEventListener("scroll", () => {
  const c = channels.get(current);
  if (c && messagesList.scrollTop < 40 && messagesList.scrollHeight > messagesList.clientHeight) void loadOlder(c);
});

// Phone width: rooms and members are drawers below the top bar, opened from it.
function showPanel(panel: "" | "sidebar" | "people"): void {
  app.dataset.panel = panel;
  roomsToggle.setAttribute("aria-expanded", String(panel === "sidebar"));
  membersToggle.setAttribute("aria-expanded", String(panel === "people"));
}
roomsToggle.addEventListener("click", () => showPanel(app.dataset.panel === "sidebar" ? "" : "sidebar"));
membersToggle.addEventListener("click", () => showPanel(app.dataset.panel === "people" ? "" : "people"));
for (const button of document.querySelectorAll<HTMLButtonElement>("[data-close-panel]")) button.addEventListener("click", () => showPanel(""));
window.addEventListener("pagehide", persist);

// ---- start ---------------------------------------------------------------------------

initAttention();
showStatus("closed");
const tab = tabRecord();
if (tab) {
  // A reload: this tab was signed in, so it signs straight back in as the same person,
  // showing its rooms and conversations at once (offline until the welcome).
  app.dataset.state = "chat";
  start(tab);
  renderAll();
} else {
  showLogin();
}
