// The web client in a real browser: the system's Chromium, or the one npm ships (see
// helpers/tools.ts), driven by playwright-core.
// Two people chat, a private message reaches only its recipient, hostile text renders as
// text, and the page rides through a server restart without missing a message.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
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
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function openAs(name: string, width = 1000): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 700 }, locale: "en-US" });
  page.on("dialog", () => {
    throw new Error(`a dialog opened in ${name}'s page: script ran`);
  });
  await page.goto(`http://127.0.0.1:${port}/?name=${name}`);
  await expect(page.locator("#name-input").inputValue()).resolves.toBe(name);
  await page.click("#login-button");
  await page.waitForSelector('#status[data-status="online"]');
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#text-input", text);
  await page.press("#text-input", "Enter");
}

const messageTexts = (page: Page) => page.locator("#messages .msg .text").allTextContents();

describe.skipIf(!CHROMIUM)("the web client", () => {
  let alice: Page;
  let bob: Page;
  let carol: Page;

  test("serves the page at /", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain('id="messages"');
  });

  test("two pages chat in a room", async () => {
    alice = await openAs("alice");
    bob = await openAs("bob");
    carol = await openAs("carol", 390); // a phone's width
    await say(alice, "hello bob");
    await bob.locator("#messages .msg .text", { hasText: "hello bob" }).waitFor();
    await say(bob, "hi alice 👋");
    await alice.locator("#messages .msg .text", { hasText: "hi alice 👋" }).waitFor();
    await expect(alice.locator("#online").textContent()).resolves.toBe("3 online");
    await expect(alice.locator("#members li").allTextContents()).resolves.toEqual(expect.arrayContaining(["alice ★", "bob", "carol"]));
  });

  test("a private message reaches only its recipient and is marked private", async () => {
    await alice.click('#members button:text-is("bob")');
    await say(alice, "just between us");
    await bob.locator('#channels button:has-text("@ alice")').click();
    const privateMsg = bob.locator("#messages .msg.private", { hasText: "just between us" });
    await privateMsg.waitFor();
    await expect(privateMsg.locator(".private-tag").textContent()).resolves.toBe("private");
    // carol sees a public message sent after the private one, and never the private one.
    await bob.locator('#channels button:has-text("# lobby")').click();
    await say(bob, "public again");
    await carol.locator("#messages .msg .text", { hasText: "public again" }).waitFor();
    expect(await carol.content()).not.toContain("just between us");
    await expect(carol.locator('#channels button:has-text("@")').count()).resolves.toBe(0);
    await alice.locator('#channels button:has-text("# lobby")').click();
  });

  test("hostile text renders literally, no markup, no script", async () => {
    const xss = "<img src=x onerror=alert(1)>";
    await say(alice, xss);
    const rendered = bob.locator("#messages .msg .text", { hasText: xss });
    await rendered.waitFor();
    await expect(rendered.textContent()).resolves.toBe(xss);
    await expect(bob.locator("#messages img").count()).resolves.toBe(0);
  });

  test("the page survives a server restart and shows what was sent while it was away", async () => {
    await bob.locator('#channels button:has-text("# lobby")').click();
    await server.stop();
    await bob.waitForSelector('#status:not([data-status="online"])');
    server = await boot();
    // dave speaks on the new server before bob's page has reconnected (its backoff is ≥ 250 ms).
    const dave = await TestClient.connect(server.wsUrl, { name: "dave" });
    dave.send("sent while you were away 1");
    dave.send("sent while you were away 2");
    await dave.next("message", (m) => m.text === "sent while you were away 2");
    await bob.waitForSelector('#status[data-status="online"]', { timeout: 20_000 });
    await bob.locator("#messages .msg .text", { hasText: "sent while you were away 2" }).waitFor();
    const texts = await messageTexts(bob);
    for (const text of ["hello bob", "sent while you were away 1", "sent while you were away 2"]) {
      expect(texts.filter((x) => x === text)).toHaveLength(1); // no gaps, no duplicates
    }
    expect(texts.indexOf("sent while you were away 1")).toBeLessThan(texts.indexOf("sent while you were away 2"));
    await alice.waitForSelector('#status[data-status="online"]', { timeout: 20_000 });
    await say(alice, "back together");
    await bob.locator("#messages .msg .text", { hasText: "back together" }).waitFor();
    dave.close();
    mkdirSync(OUTPUT, { recursive: true });
    await alice.screenshot({ path: join(OUTPUT, "alice.png") });
    await bob.screenshot({ path: join(OUTPUT, "bob.png") });
  });

  test("refusals are explained on the page", async () => {
    const page = await browser.newPage({ locale: "en-US" });
    await page.goto(`http://127.0.0.1:${port}/?name=alice`);
    await page.click("#login-button");
    await page.waitForFunction(() => document.getElementById("login-error")!.textContent!.length > 0);
    await expect(page.locator("#login-error").textContent()).resolves.toContain("That name is taken");
    await page.close();
  });

  test("the page speaks Simplified Chinese to a Chinese browser", async () => {
    const page = await browser.newPage({ locale: "zh-CN" });
    await page.goto(`http://127.0.0.1:${port}/`);
    await expect(page.locator("#login-title").textContent()).resolves.toBe("加入聊天");
    await page.close();
  });
});
