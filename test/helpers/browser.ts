// Chromium for the browser suites, launched the one way they all need: headless, no
// sandbox (tests run as root in CI), nothing phoning home.
import { chromium, type Browser } from "playwright-core";
import type { BrowserLaunch } from "./tools.ts";

export function launchChromium(launch: BrowserLaunch): Promise<Browser> {
  return chromium.launch({
    executablePath: launch.executablePath,
    env: { ...process.env, ...launch.env },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"],
  });
}
