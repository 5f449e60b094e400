// The admin page: built on the server API only (docs/API.md), with the API key entered
// once and kept in sessionStorage (this tab, until it closes). Every string from the
// server is placed with textContent.
import type { Sanction } from "../engine/sanctions.ts";
import type { HistoryItem } from "../protocol/frames.ts";
import { adminLanguage, adminText as t, type AdminKey } from "./admin-i18n.ts";
import { $, applyWords, el, locale } from "./dom.ts";

interface Answer {
  status: number;
  body: Record<string, unknown>;
}


const KEY_SLOT = "bunchat.admin.key";
const REFRESH_MS = 5000;


document.documentElement.lang = locale(adminLanguage) ?? "en";
document.title = t("title");
// Never inside another site's frame: a kick or a ban is one click, and a page framing this
// one could steer that click (clickjacking). Bun's HTML routes send no X-Frame-Options or
// frame-ancestors header, so the page itself refuses to start when framed (and a frame
// sandboxed without scripts gets no working page at all).
if (window.top !== window.self) {
  const refusal = document.createElement("p");
  refusal.id = "framed";
  refusal.textContent = t("framed");
  document.body.replaceChildren(refusal);
  throw new Error("the admin page does not run in a frame");
}
applyWords((key) => t(key as AdminKey));

const admin = $("admin");
const notice = $("notice");
const roomsBody = $("rooms");
const roomPanel = $("room-panel");
const membersList = $("members");
const membersMore = $<HTMLButtonElement>("members-more");
const messagesList = $("messages");
const bansList = $("bans");
const mutesList = $("mutes");
const reasonInput = $<HTMLInputElement>("action-reason");
const durationSelect = $<HTMLSelectElement>("action-duration");

let key = sessionStorage.getItem(KEY_SLOT) ?? "";
let selected = "";
let membersCursor: string | null = null;


function button(label: string, onClick: () => void, className = "small"): HTMLButtonElement {
  const b = el("button", className, label);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function say(text: string, error = false): void {
  notice.textContent = text;
  notice.classList.toggle("error", error);
}

class Locked extends Error {}

/** One server API call; a 401/403 about the key opens the key form. */
async function api(method: string, path: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { "x-actor": "admin page" };
  if (key) headers["x-api-key"] = key;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const answer: Answer = { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  const error = answer.body.error;
  if (error === "api_key_required" || error === "bad_api_key" || error === "api_local_only") {
    askForKey(t(error === "bad_api_key" && key ? "keyWrong" : error === "api_local_only" ? "localOnly" : "keyNeeded"));
    throw new Locked();
  }
  if (res.status >= 400) throw new Error(String(answer.body.message ?? res.status));
  return answer;
}

/** Run an action; its failure is said on the page. */
async function act(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof Locked)) say(t("failed", { message: error instanceof Error ? error.message : String(error) }), true);
  }
}

function reached(body: Record<string, unknown>): string {
  const missing = (body.missing as string[] | undefined) ?? [];
  return missing.length > 0 ? ` ${t("missingNodes", { nodes: missing.join(", ") })}` : "";
}

function askForKey(message: string): void {
  admin.dataset.state = "key";
  $("key-error").textContent = message;
  $<HTMLInputElement>("key-input").focus();
}

// ---- rooms ---------------------------------------------------------------------------

async function loadRooms(): Promise<void> {
  const { body } = await api("GET", "/api/rooms?limit=1000");
  admin.dataset.state = "ready";
  const rows = (body.rooms as { room: string; online: number }[]).map(({ room, online }) => {
    const tr = el("tr");
    tr.dataset.room = room;
    tr.setAttribute("aria-selected", String(room === selected));
    const cell = el("td");
    cell.append(button(room, () => void act(() => selectRoom(room)), "secondary small"));
    tr.append(cell, el("td", "", String(online)));
    return tr;
  });
  roomsBody.replaceChildren(...rows);
}

/** Bumped by each selectRoom: answers for an older selection are dropped. */
let selection = 0;

async function selectRoom(room: string): Promise<void> {
  selected = room;
  const mine = ++selection;
  for (const tr of roomsBody.querySelectorAll("tr")) tr.setAttribute("aria-selected", String(tr.dataset.room === room));
  roomPanel.hidden = false;
  $("room-title").textContent = `# ${room}`;
  membersCursor = "0";
  await Promise.all([loadMembers(mine), loadMessages(mine)]);
}

async function loadMembers(mine = selection): Promise<void> {
  const cursor = membersCursor;
  if (cursor === null) return;
  const { body } = await api("GET", `/api/rooms/${encodeURIComponent(selected)}/members?limit=100&cursor=${cursor}`);
  if (mine !== selection) return;
  const rows = (body.members as { id: string; name: string }[]).map((m) => memberRow(m.id, m.name));
  if (cursor === "0") membersList.replaceChildren(...rows);
  else membersList.append(...rows);
  membersCursor = body.next as string | null;
  membersMore.hidden = membersCursor === null;
}

function chosenDuration(): number | undefined {
  return durationSelect.value === "" ? undefined : Number(durationSelect.value);
}

function memberRow(id: string, name: string): HTMLLIElement {
  const li = el("li");
  li.dataset.name = name;
  li.append(el("span", "who", name));
  const user = `/api/users/${encodeURIComponent(name)}`;
  li.append(
    button(t("kick"), () => void act(async () => {
      const { body } = await api("POST", `${user}/kick`, { reason: reasonInput.value });
      say(t("kicked", { name, n: Number(body.closed) }) + reached(body));
      await refresh();
    }), "small danger"),
    button(t("mute"), () => void act(async () => {
      const { body } = await api("POST", "/api/mutes", { person: id, label: name, room: selected, duration: chosenDuration(), reason: reasonInput.value });
      say(t("muted", { label: name }) + reached(body));
      await loadSanctions();
    })),
    button(t("ban"), () => void act(async () => {
      const { body } = await api("POST", "/api/bans", { person: id, label: name, duration: chosenDuration(), reason: reasonInput.value });
      say(t("banned", { label: name }) + reached(body));
      await refresh();
    }), "small danger"),
  );
  return li;
}

async function loadMessages(mine: number): Promise<void> {
  let items: HistoryItem[] = [];
  try {
    items = ((await api("GET", `/api/rooms/${encodeURIComponent(selected)}/messages?limit=30`)).body.messages as HistoryItem[]) ?? [];
  } catch (error) {
    if (error instanceof Locked) throw error;
    // History off: nothing to list.
  }
  if (mine !== selection) return;
  messagesList.replaceChildren(...items.reverse().map((m) => {
    const li = el("li");
    li.dataset.id = String(m.id);
    li.append(el("span", "muted", `#${m.id}`), el("span", "from", m.from), el("span", "text", m.text));
    li.append(button(t("delete"), () => void act(async () => {
      await api("DELETE", `/api/rooms/${encodeURIComponent(selected)}/messages/${m.id}`);
      say(t("deleted", { id: m.id }));
      li.remove();
    }), "small danger"));
    return li;
  }));
}

// ---- bans and mutes ------------------------------------------------------------------

function sanctionRow(s: Sanction): HTMLLIElement {
  const li = el("li");
  li.dataset.id = s.id;
  const when = s.until === 0 ? t("always") : t("until", { time: new Date(s.until).toLocaleString(locale(adminLanguage)) });
  const where = s.kind === "mute" ? ` · ${s.room ? t("inRoom", { room: s.room }) : t("everywhere")}` : "";
  li.append(el("span", "what", `${s.label}${where} · ${when}${s.reason ? ` · ${s.reason}` : ""}`));
  li.append(button(t(s.kind === "ban" ? "unban" : "unmute"), () => void act(async () => {
    const { body } = await api("DELETE", `/api/${s.kind}s/${encodeURIComponent(s.id)}`);
    say(t("lifted") + reached(body));
    await loadSanctions();
  }), "secondary small"));
  return li;
}

async function loadSanctions(): Promise<void> {
  const [bans, mutes] = await Promise.all([api("GET", "/api/bans"), api("GET", "/api/mutes")]);
  const render = (list: HTMLElement, items: Sanction[]) => list.replaceChildren(...(items.length ? items.map(sanctionRow) : [el("li", "muted", t("none"))]));
  render(bansList, bans.body.bans as Sanction[]);
  render(mutesList, mutes.body.mutes as Sanction[]);
}

async function refresh(): Promise<void> {
  await loadRooms();
  await loadSanctions();
  if (selected) await selectRoom(selected);
}

// ---- forms ---------------------------------------------------------------------------

$<HTMLFormElement>("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  key = $<HTMLInputElement>("key-input").value.trim();
  sessionStorage.setItem(KEY_SLOT, key);
  $("key-error").textContent = "";
  void act(refresh);
});

$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_SLOT);
  key = "";
  askForKey("");
});

$<HTMLFormElement>("announce-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void act(async () => {
    const text = $<HTMLTextAreaElement>("announce-text").value;
    const room = $<HTMLInputElement>("announce-room").value.trim();
    const { body } = await api("POST", "/api/announce", room ? { text, room } : { text });
    say((room ? t("announcedRoom", { room: String(body.room) }) : t("announced", { n: Number(body.connections) })) + reached(body));
    $<HTMLTextAreaElement>("announce-text").value = "";
  });
});

$<HTMLFormElement>("ban-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void act(async () => {
    const target = $<HTMLSelectElement>("ban-target").value;
    const value = $<HTMLInputElement>("ban-value").value.trim();
    const { body } = await api("POST", "/api/bans", { [target]: value, duration: chosenDuration(), reason: reasonInput.value });
    say(t("banned", { label: (body.ban as Sanction).label }) + reached(body));
    $<HTMLInputElement>("ban-value").value = "";
    await refresh();
  });
});

$("rooms-refresh").addEventListener("click", () => void act(refresh));
membersMore.addEventListener("click", () => void act(() => loadMembers()));

setInterval(() => {
  if (admin.dataset.state === "ready" && !document.hidden) void act(loadRooms);
}, REFRESH_MS);

void act(refresh);
