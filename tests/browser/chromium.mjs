// Debian's headless Chromium as every browser test here opens it: a new, empty profile; no
// sandbox as root, no GPU, and none of Chromium's own traffic to Google (a closed network refuses
// it); every request to anything but loopback refused and recorded, since the pages must need
// none; page errors collected.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export async function open() {
  const profile = mkdtempSync(join(tmpdir(), "bashu-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // The network is gone but for loopback: every other request goes to a proxy that is not
      // there (Chromium never proxies loopback).
      "--proxy-server=http://127.0.0.1:9",
    ],
    viewport: { width: 1400, height: 1000 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const offLoopback = [];
  const requested = [];
  await context.route("**/*", (route) => {
    const target = new URL(route.request().url());
    requested.push(route.request().url());
    if (["127.0.0.1", "localhost", "[::1]"].includes(target.hostname) || target.protocol === "data:") return route.continue();
    offLoopback.push(route.request().url());
    return route.abort("internetdisconnected");
  });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { page, offLoopback, requested, problems, close };
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}
