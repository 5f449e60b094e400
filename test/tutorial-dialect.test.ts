// The classic ws tutorial's own page, unchanged but for its port, against a server started
// with --dialect tutorial, in the same room as a bunchat-protocol client: each sees its own
// frames. Real server, real Chromium (see helpers/tools.ts), real WebSocket clients.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chromium, type Browser, type Page } from "playwright-core";
import type { ChatServer } from "../src/app.ts";
import { TestClient } from "./helpers/client.ts";
import { startServer } from "./helpers/server.ts";
import { chromiumForTests } from "./helpers/tools.ts";

const CHROMIUM = await chromiumForTests();
const PAGE = await Bun.file(`${import.meta.dir}/fixtures/tutorial-client.html`).text();

let browser: Browser;
let server: ChatServer;
let pages: ReturnType<typeof Bun.serve>;
const clients: TestClient[] = [];

beforeAll(async () => {
  server = await startServer({ dialect: "tutorial", rateLimit: 0, presenceWindow: 30 });
  // The tutorial's page, served from elsewhere, pointed at this server's port.
  const page = PAGE.replaceAll("ws://localhost:8080", `ws://127.0.0.1:${server.port}`);
  pages = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } }) });
  if (!CHROMIUM) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM.executablePath,
    env: { ...process.env, ...CHROMIUM.env },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"],
  });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await browser?.close();
  pages?.stop(true);
  await server?.stop();
});

async function tutorialPage(): Promise<{ page: Page; id: string }> {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${pages.port}/`);
  await page.waitForSelector("li.welcome");
  await page.waitForFunction(() => document.getElementById("my-id")!.textContent !== "");
  return { page, id: (await page.textContent("#my-id"))! };
}

const lines = (page: Page, kind: string) => page.locator(`li.${kind}`).allTextContents();

describe("the tutorial dialect", () => {
  test("a raw client on / speaks the tutorial's frames; /ws keeps bunchat's", async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    const got: string[] = [];
    raw.onmessage = (e) => got.push(String(e.data));
    await new Promise((resolve) => (raw.onopen = resolve));
    raw.send("ping");
    await Bun.sleep(100);
    expect(JSON.parse(got[0]!)).toMatchObject({ type: "welcome", userName: expect.stringMatching(/^user-/) });
    expect(JSON.parse(got[1]!)).toMatchObject({ type: "your-id" });
    expect(got).toContain("pong");
    raw.close();
    const bunchat = await TestClient.connect(server.wsUrl, { name: "native" });
    clients.push(bunchat);
    expect(bunchat.frames[0]!.type).toBe("welcome");
    expect(bunchat.frames[0]!.you).toBeDefined();
    bunchat.close();
  });

  test.skipIf(!CHROMIUM)("the tutorial's page chats, sees joins and leaves with counts, and whispers by id — beside a bunchat client", async () => {
    const alice = await TestClient.connect(server.wsUrl, { name: "alice" });
    clients.push(alice);
    alice.send("before the page");
    await alice.next("message");
    const { page, id } = await tutorialPage();
    expect((await lines(page, "welcome"))[0]).toContain(`欢迎来到聊天室，${id}！`);
    // The room's recent history arrives as chat messages, with sender and time.
    expect((await lines(page, "chat"))[0]).toMatch(/^\[\d{2}:\d{2}:\d{2}\] alice: before the page$/);

    alice.send("hello from bunchat");
    await page.waitForFunction(() => [...document.querySelectorAll("li.chat")].some((li) => li.textContent!.endsWith("alice: hello from bunchat")));
    await page.fill("#message-input", "hello from the tutorial page");
    await page.click("#send-button");
    expect(await alice.next("message", (m) => m.text === "hello from the tutorial page")).toMatchObject({ from: id, room: "lobby" });

    // Someone else arrives and leaves: join and leave notices with the online count.
    const second = await tutorialPage();
    await page.waitForSelector("li.user-join");
    expect((await lines(page, "user-join")).at(-1)).toContain(`${second.id} 加入了聊天室（在线 3 人）`);
    await second.page.close();
    await page.waitForSelector("li.user-leave");
    expect((await lines(page, "user-leave")).at(-1)).toContain(`${second.id} 离开了聊天室（在线 2 人）`);

    // Private messages by id, both ways.
    await page.fill("#private-to", "alice");
    await page.fill("#private-input", "psst alice");
    await page.click("#private-button");
    expect(await alice.next("private", (m) => m.text === "psst alice")).toMatchObject({ from: id, to: "alice" });
    alice.send({ type: "private", to: id, text: "psst back" });
    await page.waitForSelector("li.private");
    expect(await lines(page, "private")).toEqual(["[私聊] alice: psst back"]);

    // The bunchat client never saw a tutorial frame.
    expect(alice.frames.every((f) => ["welcome", "message", "presence", "private"].includes(f.type))).toBe(true);
    await page.close();
  }, 30_000);
});
