// The duty board in Debian's headless Chromium, driven by Playwright's core library. The Rust test
// `duty_board_in_a_browser` (tests/integration/board.rs) runs this script against a real Bashu on
// real NATS and plays the other side over stdin/stdout, one line per step:
//   script → test   "signed-in"                  test → script  "alert <alert key> <code,code,…>"
//   script → test   "tiles <code,code,…>"        test → script  "acknowledged <code> <by>"
//   script → test   "cut-now"                    test → script  "cut"       (the test cuts the connection)
//   script → test   "restore-now"                test → script  "restored"
//   script → test   "recovered"                  test → script  "acknowledged <code> <by>"
//   script → test   "done <screenshot path>"
// Every request to anything but loopback is refused and recorded: the page must need none.
// Environment: BOARD_URL, BOARD_TOKEN (a viewer's token), BOARD_SCREENSHOT, CHROMIUM (optional).
import { createInterface } from "node:readline";
import { check, open } from "./chromium.mjs";

const url = process.env.BOARD_URL;
const token = process.env.BOARD_TOKEN;
const screenshot = process.env.BOARD_SCREENSHOT;
if (!url || !token || !screenshot) throw new Error("BOARD_URL, BOARD_TOKEN and BOARD_SCREENSHOT are required");

const reader = createInterface({ input: process.stdin });
const lines = reader[Symbol.asyncIterator]();
async function expectLine(word) {
  const { value, done } = await lines.next();
  if (done) throw new Error(`the test closed stdin while the script waited for "${word}"`);
  const [first, ...rest] = value.trim().split(" ");
  if (first !== word) throw new Error(`expected "${word}" from the test, got "${value}"`);
  return rest;
}
const say = (line) => process.stdout.write(`${line}\n`);

const { page, offLoopback, requested, problems, close } = await open();
try {
  // Without a token: the login form, and no data.
  await page.goto(url);
  await page.locator("#login-form").waitFor({ state: "visible" });
  check(await page.locator("#alerts-view").isHidden(), "the alert view shows before signing in");
  const refused = await page.evaluate(async () => (await fetch("events")).status);
  check(refused === 401, `the event stream answered ${refused} without a token`);

  // With a wrong token: refused, still no data.
  await page.fill("#token", "not-a-real-token-0123456789abcdef");
  await page.click("#login-form button[type=submit]");
  await page.locator("#login-error").filter({ hasText: "refused" }).waitFor();
  check(await page.locator("#alerts-view").isHidden(), "the alert view shows after a wrong token");
  const stillRefused = await page.evaluate(async () => (await fetch("counties")).status);
  check(stillRefused === 401, `the counties answered ${stillRefused} after a wrong token`);

  // With a viewer's token: in, live.
  await page.fill("#token", token);
  await page.press("#token", "Enter");
  await page.locator("#alerts-view").waitFor({ state: "visible" });
  await page.locator('#connection[data-state="live"]').waitFor();
  await page.evaluate(() => (window.notReloaded = true));
  say("signed-in");

  // An alert to a prefecture: exactly its counties' tiles.
  const [alertKey, codeList] = await expectLine("alert");
  const expected = codeList.split(",").sort();
  const item = page.locator(`[data-chain="${alertKey}"]`);
  await item.waitFor();
  await item.focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction(
    (count) => document.querySelectorAll('#tiles button[data-county]:not([data-state="untargeted"])').length === count,
    expected.length,
  );
  const shown = (await page.locator("#tiles button[data-county]").evaluateAll((tiles) => tiles.map((t) => t.dataset.county))).sort();
  check(JSON.stringify(shown) === JSON.stringify(expected), `tiles ${shown} are not the prefecture's counties ${expected}`);
  const states = await page.locator("#tiles button[data-county]").evaluateAll((tiles) => tiles.map((t) => t.dataset.state));
  check(states.every((s) => s === "sent" || s === "received"), `fresh tiles in states ${states}`);
  const hover = await page.locator(`[data-county="${expected[0]}"]`).getAttribute("title");
  check(/[A-Za-z]/.test(hover), `the tile's hover text has no pinyin: ${hover}`);
  say(`tiles ${shown.join(",")}`);

  // An acknowledgement through the API: that tile changes, without a reload.
  const [acknowledged, ...by] = await expectLine("acknowledged");
  const told = Date.now();
  const tile = page.locator(`#tiles [data-county="${acknowledged}"]`);
  await page.locator(`#tiles [data-county="${acknowledged}"][data-state="acknowledged"]`).waitFor();
  // For the record, not a check: shared machines are too noisy for timed assertions.
  process.stderr.write(`the tile changed ${Date.now() - told} ms after the acknowledgement was answered\n`);
  check(await page.evaluate(() => window.notReloaded === true), "the page reloaded");
  const counted = await page.locator('#state-counts [data-state="acknowledged"] strong').textContent();
  check(counted === "1", `the acknowledged count shows ${counted}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  // Keyboard: the tile opens its details with Enter; Escape closes them.
  await tile.focus();
  await page.keyboard.press("Enter");
  await page.locator("#county-dialog[open]").waitFor();
  const details = await page.locator("#dialog-facts").textContent();
  // Who confirmed, and whose token recorded it.
  for (const word of by) check(details.includes(word), `the tile's details do not name ${word}: ${details}`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-county.png") });
  await page.keyboard.press("Escape");
  await page.locator("#county-dialog[open]").waitFor({ state: "detached" });

  // A lost connection is shown, and the page recovers by itself.
  // BOARD_URL goes through the test's proxy, which cuts every connection on request.
  say("cut-now");
  await expectLine("cut");
  await page.locator('#connection[data-state="lost"]').waitFor({ timeout: 30000 });
  say("restore-now");
  await expectLine("restored");
  await page.locator('#connection[data-state="live"]').waitFor({ timeout: 30000 });
  say("recovered");
  const [second] = await expectLine("acknowledged");
  await page.locator(`#tiles [data-county="${second}"][data-state="acknowledged"]`).waitFor();
  check(await page.evaluate(() => window.notReloaded === true), "the page reloaded while recovering");

  // The same board on a phone, kept beside the others.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-phone.png"), fullPage: true });

  check(offLoopback.length === 0, `the page asked beyond loopback: ${offLoopback.join(", ")}`);
  check(!requested.some((r) => r.includes(token)), "the token appeared in a URL");
  check(problems.length === 0, problems.join("; "));
  say(`done ${screenshot}`);
} finally {
  reader.close();
  await close();
}
