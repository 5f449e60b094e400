// The web page in a real browser: the system's Chromium, or the one npm ships (see
// helpers/tools.ts), driven by playwright-core.
// People chat, a private message reaches only its recipient and is listed apart from the
// rooms, hostile text renders as text and links safely, the page rides through a server
// restart, and it remembers: a reload keeps the person, rooms and conversations; a second
// tab continues as the same person or enters as someone new.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { ChatServer } from "../src/app.ts";
import { TestClient } from "./helpers/client.ts";
import { startServer } from "./helpers/server.ts";
import { chromiumForTests } from "./helpers/tools.ts";

const CHROMIUM = await chromiumForTests();
const OUTPUT = join(import.meta.dir, "..", "test-output");

let browser: Browser;
let server: ChatServer;
let dir = "";
let port = 0;
const sockets: TestClient[] = [];

async function boot(): Promise<ChatServer> {
  return startServer({ port, historyDb: join(dir, "chat.db"), rateLimit: 0, presenceWindow: 50 });
}

beforeAll(async () => {
  if (!CHROMIUM) return;
  dir = mkdtempSync(join(tmpdir(), "bunchat-browser-"));
  server = await boot();
  port = server.port;
  browser = await chromium.launch({
    executablePath: CHROMIUM.executablePath,
    env: { ...process.env, ...CHROMIUM.env },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"],
  });
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A tab that must never run a script from a message (a dialog would mean it did). */
async function tab(context: BrowserContext, query = ""): Promise<Page> {
  const page = await context.newPage();
  page.on("dialog", () => {
    throw new Error("a dialog opened: script ran");
  });
  await page.goto(`http://127.0.0.1:${port}/${query}`);
  return page;
}

/** A new browser (its own storage) signed in as `name`. */
async function openAs(name: string, width = 1000, locale = "en-US"): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 700 }, locale });
  const page = await tab(context, `?name=${name}`);
  expect(await page.locator("#name-input").inputValue()).toBe(name);
  await page.click("#login-button");
  await online(page);
  return page;
}

const online = (page: Page) => page.waitForSelector('#status[data-status="online"]', { timeout: 20_000 });

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#text-input", text);
  await page.press("#text-input", "Enter");
}

async function socket(query: Record<string, string>): Promise<TestClient> {
  const c = await TestClient.connect(server.wsUrl, query);
  sockets.push(c);
  return c;
}

const messageTexts = (page: Page) => page.locator("#messages .msg .text").allTextContents();
/** Wait for a message whose whole text is `text`. */
const seeText = (page: Page, text: string) => page.locator("#messages .msg .text", { hasText: new RegExp(`^${RegExp.escape(text)}$`) }).waitFor();
const roomButton = (page: Page, room: string) => page.locator("#channels .open", { hasText: `# ${room}` });
const conversationButton = (page: Page, name: string) => page.locator("#conversations .open", { hasText: `@ ${name}` });
const memberNames = (page: Page) => page.locator("#members .name").allTextContents();

describe.skipIf(!CHROMIUM)("the web client", () => {
  let alice: Page;
  let bob: Page;
  let carol: Page;

  test("serves the page at / and a favicon at /favicon.ico", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain('id="messages"');
    const icon = await fetch(`http://127.0.0.1:${port}/favicon.ico`);
    expect(icon.status).toBe(200);
    expect(icon.headers.get("content-type")).toBe("image/svg+xml");
    expect(await icon.text()).toStartWith("<svg");
  });

  test("two pages chat in a room; the member list marks and explains you", async () => {
    alice = await openAs("alice");
    bob = await openAs("bob");
    carol = await openAs("carol", 390); // a phone's width
    await say(alice, "hello bob");
    await seeText(bob, "hello bob");
    await say(bob, "hi alice 👋");
    await seeText(alice, "hi alice 👋");
    expect(await alice.locator("#online").textContent()).toBe("3 online");
    expect(await memberNames(alice)).toEqual(["alice", "bob", "carol"]);
    expect(await alice.locator("#members li").first().textContent()).toBe("alice★ you");
    expect(await alice.locator("#members-hint").textContent()).toContain("★ marks you");
    expect(await alice.locator('#members button:has-text("bob")').isEnabled()).toBe(true);
  });

  test("a private message reaches only its recipient, listed apart from rooms with an unread count", async () => {
    await alice.click('#members button:has-text("bob")');
    expect(await alice.locator("#channel-name").textContent()).toBe("@ bob");
    await say(alice, "just between us");
    await conversationButton(bob, "alice").locator(".badge", { hasText: "1" }).waitFor();
    expect(await bob.locator("#channels .open").allTextContents()).toEqual(["# lobby"]);
    await conversationButton(bob, "alice").click();
    const privateMsg = bob.locator("#messages .msg.private", { hasText: "just between us" });
    await privateMsg.waitFor();
    expect(await privateMsg.locator(".private-tag").textContent()).toBe("private");
    expect(await conversationButton(bob, "alice").locator(".badge").count()).toBe(0);
    // carol sees a public message sent after the private one, and never the private one.
    await roomButton(bob, "lobby").click();
    await say(bob, "public again");
    await seeText(carol, "public again");
    expect(await carol.content()).not.toContain("just between us");
    expect(await carol.locator("#conversations .open").count()).toBe(0);
  });

  test("hostile text renders literally; an address becomes a safe link", async () => {
    const xss = "<img src=x onerror=alert(1)>";
    await say(bob, xss);
    const rendered = carol.locator("#messages .msg .text", { hasText: xss });
    await rendered.waitFor();
    expect(await rendered.textContent()).toBe(xss);
    expect(await carol.locator("#messages img").count()).toBe(0);
    await say(bob, "see https://example.com/a?b=c&d=1. and javascript:alert(1)");
    const link = carol.locator("#messages .msg .text a");
    await link.waitFor();
    expect(await link.count()).toBe(1);
    expect(await link.getAttribute("href")).toBe("https://example.com/a?b=c&d=1");
    expect(await link.getAttribute("rel")).toBe("noopener noreferrer");
    expect(await link.getAttribute("target")).toBe("_blank");
    expect(await link.textContent()).toBe("https://example.com/a?b=c&d=1");
    expect(await link.evaluate((a) => a.parentElement!.textContent)).toBe("see https://example.com/a?b=c&d=1. and javascript:alert(1)");
  });

  test("at a phone's width the member list is a drawer, and a name opens a conversation", async () => {
    expect(await carol.locator("#members").isVisible()).toBe(false);
    await carol.click("#members-toggle");
    await carol.locator('#members button:has-text("bob")').click();
    expect(await carol.locator("#channel-name").textContent()).toBe("@ bob");
    expect(await carol.locator("#members").isVisible()).toBe(false); // the drawer closed
    await carol.click("#rooms-toggle");
    expect(await conversationButton(carol, "bob").isVisible()).toBe(true);
    expect(await carol.locator("#unread-total").isHidden()).toBe(true);
    await roomButton(carol, "lobby").click();
  });

  test("the typing notice clears when that person's message arrives", async () => {
    await roomButton(alice, "lobby").click();
    await bob.locator("#text-input").pressSequentially("typ");
    await alice.locator("#typing", { hasText: "bob is typing" }).waitFor();
    await bob.fill("#text-input", "done typing");
    await bob.press("#text-input", "Enter");
    await seeText(alice, "done typing");
    expect(await alice.locator("#typing").textContent()).toBe("");
  });

  test("a private message to a hidden tab shows in its title", async () => {
    const dave = await socket({ name: "dave" });
    await bob.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    });
    dave.send({ type: "private", to: "bob", text: "are you there?" });
    await bob.waitForFunction(() => document.title.startsWith("(1)"));
    await bob.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    expect(await bob.title()).toBe("bunchat");
  });

  test("the page survives a server restart: offline in the header, then what was sent while away", async () => {
    await roomButton(bob, "lobby").click();
    await server.stop();
    await bob.waitForSelector('#status:not([data-status="online"])');
    expect(await bob.locator("#online").textContent()).toBe("offline");
    server = await boot();
    // dave speaks on the new server before bob's page has reconnected.
    const dave = await socket({ name: "dave2" });
    dave.send("sent while you were away 1");
    dave.send("sent while you were away 2");
    await dave.next("message", (m) => m.text === "sent while you were away 2");
    await online(bob);
    await seeText(bob, "sent while you were away 2");
    const texts = await messageTexts(bob);
    for (const text of ["hello bob", "sent while you were away 1", "sent while you were away 2"]) {
      expect(texts.filter((x) => x === text)).toHaveLength(1); // no gaps, no duplicates
    }
    expect(texts.indexOf("sent while you were away 1")).toBeLessThan(texts.indexOf("sent while you were away 2"));
    await online(alice);
    await roomButton(alice, "lobby").click();
    await say(alice, "back together");
    await seeText(bob, "back together");
    expect(await bob.locator("#online").textContent()).toMatch(/^\d+ online$/);
  });

  test("leave a room and change your nickname", async () => {
    await carol.click("#rooms-toggle");
    await carol.fill("#join-input", "garden");
    await carol.press("#join-input", "Enter");
    expect(await carol.locator("#channel-name", { hasText: "# garden" }).waitFor()).toBeUndefined();
    await carol.click("#rooms-toggle");
    await carol.click('#channels button[aria-label="Leave #garden"]');
    await roomButton(carol, "garden").waitFor({ state: "detached" });
    expect(await carol.locator("#channels .open").allTextContents()).toEqual(["# lobby"]);
    await carol.click("#nick-button");
    await carol.fill("#nick-input", "caroline");
    await carol.press("#nick-input", "Enter");
    await alice.locator("#messages .notice", { hasText: "carol is now caroline" }).waitFor();
    expect(await carol.locator("#my-name").textContent()).toBe("caroline");
    await alice.locator('#members .name:text-is("caroline")').waitFor();
  });

  test("a reload keeps you signed in, with your rooms and private conversations; a conversation's history loads on open and pages on scroll", async () => {
    const erin = await socket({ name: "erin" });
    for (let i = 1; i <= 70; i++) erin.send({ type: "private", to: "alice", text: `note ${i}` });
    await erin.next("private", (m) => m.text === "note 70");
    await conversationButton(alice, "erin").waitFor();
    await alice.fill("#join-input", "dev");
    await alice.press("#join-input", "Enter");
    await alice.locator("#channel-name", { hasText: "# dev" }).waitFor();
    await alice.reload();
    await online(alice);
    expect(await alice.locator("#login").isVisible()).toBe(false);
    expect(await alice.locator("#channels .open").allTextContents()).toEqual(["# lobby", "# dev"]);
    expect(await alice.locator("#conversations .open .label").allTextContents()).toEqual(["@ bob", "@ erin"]);
    expect(await alice.locator("#channel-name").textContent()).toBe("# dev");
    await conversationButton(alice, "erin").click();
    await seeText(alice, "note 70");
    expect(await alice.locator("#messages .msg").count()).toBe(50);
    await alice.locator("#messages").evaluate((list) => list.scrollTo(0, 0));
    await seeText(alice, "note 1");
    const texts = await messageTexts(alice);
    expect(texts).toEqual(Array.from({ length: 70 }, (_, i) => `note ${i + 1}`));
    await conversationButton(alice, "bob").click();
    await seeText(alice, "just between us");
  });

  test("a second tab continues as the same person, or enters as someone new", async () => {
    const context = alice.context();
    const same = await tab(context);
    await same.locator(".continue-as", { hasText: "Continue as alice" }).click();
    await online(same);
    expect(await same.locator("#my-name").textContent()).toBe("alice");
    expect(await same.locator("#conversations .open .label").allTextContents()).toEqual(["@ bob", "@ erin"]);
    const frank = await socket({ name: "frank" });
    frank.send({ type: "private", to: "alice", text: "to both of your tabs" });
    for (const page of [alice, same]) await conversationButton(page, "frank").waitFor();

    const other = await tab(context);
    await other.locator(".continue-as").first().waitFor();
    expect(await other.locator("#name-input").inputValue()).toBe("");
    await other.fill("#name-input", "gina");
    await other.click("#login-button");
    await online(other);
    await roomButton(alice, "lobby").click();
    await say(other, "hi from the other tab");
    await seeText(alice, "hi from the other tab");
    await alice.locator('#members .name:text-is("gina")').waitFor();
    await other.close();
    await same.close();
  });

  test("a refused name is explained on the page", async () => {
    const context = await browser.newContext({ locale: "en-US" });
    const page = await tab(context, "?name=bob");
    await page.click("#login-button");
    await page.waitForFunction(() => document.getElementById("login-error")!.textContent!.length > 0);
    expect(await page.locator("#login-error").textContent()).toContain("That name is taken");
    await context.close();
  });

  test("the page speaks Simplified Chinese to a Chinese browser", async () => {
    const page = await openAs("李雷", 1000, "zh-CN");
    expect(await page.locator("#members li").first().textContent()).toBe("李雷★ 你");
    expect(await page.locator("#send-button").textContent()).toBe("发送");
    await page.context().close();
  });

  test("screenshot: rooms and a private conversation listed apart", async () => {
    await alice.setViewportSize({ width: 1000, height: 640 });
    await conversationButton(alice, "bob").click();
    await say(alice, "see you in #dev later?");
    await conversationButton(bob, "alice").click();
    await seeText(bob, "see you in #dev later?");
    await say(bob, "sure — after the standup");
    await seeText(alice, "sure — after the standup");
    mkdirSync(OUTPUT, { recursive: true });
    await alice.screenshot({ path: join(OUTPUT, "screenshot.png") });
  });
});
