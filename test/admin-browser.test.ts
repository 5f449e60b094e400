// The admin page in Chromium, on the server API only: the key entered once, rooms with
// counts and their people; an announcement, a deleted message and a kick seen in a chat
// page beside it; bans and mutes listed and lifted; in English and Simplified Chinese.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import type { ChatServer } from "../src/app.ts";
import { launchChromium } from "./helpers/browser.ts";
import { startServer } from "./helpers/server.ts";
import { chromiumForTests } from "./helpers/tools.ts";

// test/setup.ts's 30 s default reaches only the first file bun test loads (Bun 1.4.5): say it here.
setDefaultTimeout(30_000);

const CHROMIUM = await chromiumForTests();
const KEY = "admin-page-key-0123456789";

let browser: Browser;
let server: ChatServer;
let base = "";

beforeAll(async () => {
  if (!CHROMIUM) return;
  server = await startServer({ apiKey: KEY, rateLimit: 0, presenceWindow: 20 });
  base = `http://127.0.0.1:${server.port}`;
  browser = await launchChromium(CHROMIUM);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function chatAs(name: string): Promise<Page> {
  const page = await browser.newPage({ locale: "en-US" });
  await page.goto(`${base}/?name=${name}`);
  await page.click("#login-button");
  await page.waitForSelector('#status[data-status="online"]');
  return page;
}

describe.skipIf(!CHROMIUM)("the admin page", () => {
  let admin: Page;
  let alice: Page;

  test("asks for the key once, then shows the rooms with their counts and people", async () => {
    alice = await chatAs("alice");
    admin = await browser.newPage({ locale: "en-US" });
    await admin.goto(`${base}/admin`);
    await admin.waitForSelector('#admin[data-state="key"]');
    await admin.fill("#key-input", "not the key");
    await admin.click("#key-button");
    await admin.locator("#key-error", { hasText: "That key is not right." }).waitFor();
    await admin.fill("#key-input", KEY);
    await admin.click("#key-button");
    await admin.waitForSelector('#admin[data-state="ready"]');
    await admin.locator('#rooms tr[data-room="lobby"] td:nth-child(2)', { hasText: "1" }).waitFor();
    // Kept for the tab: a reload does not ask again.
    await admin.reload();
    await admin.waitForSelector('#admin[data-state="ready"]');
    await admin.click('#rooms tr[data-room="lobby"] button');
    await admin.locator('#members li[data-name="alice"]').waitFor();
  });

  test("an announcement reaches the chat page", async () => {
    await admin.fill("#announce-text", "📢 maintenance at noon");
    await admin.click("#announce-button");
    await admin.locator("#notice", { hasText: "Announced to every connection (1)." }).waitFor();
    await alice.locator("#messages .notice", { hasText: "📢 maintenance at noon" }).waitFor();
  });

  test("a deleted message disappears from the chat page", async () => {
    await alice.fill("#text-input", "oops, wrong room");
    await alice.press("#text-input", "Enter");
    await alice.locator("#messages .msg .text", { hasText: "oops, wrong room" }).waitFor();
    await admin.click('#rooms tr[data-room="lobby"] button');
    const row = admin.locator("#messages li", { hasText: "oops, wrong room" });
    await row.waitFor();
    await row.locator("button").click();
    await alice.locator("#messages .msg .text", { hasText: "oops, wrong room" }).waitFor({ state: "detached" });
  });

  test("mute and ban are listed and lifted", async () => {
    const member = admin.locator('#members li[data-name="alice"]');
    await member.locator("button", { hasText: "Mute" }).click();
    await admin.locator("#mutes li", { hasText: "alice · in lobby" }).waitFor();
    await alice.fill("#text-input", "can you hear me");
    await alice.press("#text-input", "Enter");
    await alice.locator("#messages .notice.error", { hasText: "you are muted in lobby" }).waitFor();
    await admin.locator("#mutes li button").click();
    await admin.locator("#mutes li", { hasText: "none" }).waitFor();
    await admin.selectOption("#ban-target", "ip");
    await admin.fill("#ban-value", "198.51.100.0/24");
    await admin.click("#ban-button");
    const ban = admin.locator("#bans li", { hasText: "198.51.100.0/24" });
    await ban.waitFor();
    await ban.locator("button").click();
    await admin.locator("#bans li", { hasText: "none" }).waitFor();
  });

  test("a kick closes the chat page with the reason shown, and it stays closed", async () => {
    await admin.fill("#action-reason", "take a break");
    await admin.locator('#members li[data-name="alice"] button', { hasText: "Kick" }).click();
    await admin.locator("#notice", { hasText: "alice kicked (connections closed: 1)." }).waitFor();
    await alice.locator("#messages .notice.error", { hasText: "A moderator removed you from the chat: take a break" }).waitFor();
    await alice.waitForSelector('#status[data-status="closed"]');
  });

  test("refuses to run inside another page's frame (a kick or ban must not be a click someone else steers)", async () => {
    const framing = await browser.newPage({ locale: "en-US" });
    await framing.setContent(`<iframe id="f" src="${base}/admin" width="800" height="600"></iframe>`);
    const frame = framing.frameLocator("#f");
    await frame.locator("#framed", { hasText: "open it in its own tab" }).waitFor();
    expect(await frame.locator("#admin").count()).toBe(0);
    await framing.close();
  });

  test("speaks Simplified Chinese to a Chinese browser", async () => {
    const page = await browser.newPage({ locale: "zh-CN" });
    await page.goto(`${base}/admin`);
    await expect(page.locator("#key-title").textContent()).resolves.toBe("服务器 API 密钥");
    await expect(page.title()).resolves.toBe("bunchat 管理");
    await page.close();
  });
});
