// The duty board's 稿件库 Pool tab in Debian's headless Chromium, driven by Playwright's core
// library. The Rust test `pool::the_pool_tab_in_headless_chromium` runs it against a real Bashu
// on real NATS, with stories already in the pool, and reads one line per step on stdout:
//   "found <story id>"      a search found the story, its headline highlighted
//   "filtered <count>"      the results after a province facet was clicked
//   "used <story id>"       the story's dialog marked it used
//   "done <screenshot>"
// Every request to anything but loopback is refused and recorded: the page must need none.
// Environment: BOARD_URL, BOARD_TOKEN (a viewer's staff token), COUNTY_TOKEN, BOARD_SCREENSHOT,
// CHROMIUM (optional).
import { check, open } from "./chromium.mjs";

const url = process.env.BOARD_URL;
const token = process.env.BOARD_TOKEN;
const countyToken = process.env.COUNTY_TOKEN;
const screenshot = process.env.BOARD_SCREENSHOT;
if (!url || !token || !countyToken || !screenshot) {
  throw new Error("BOARD_URL, BOARD_TOKEN, COUNTY_TOKEN and BOARD_SCREENSHOT are required");
}
const say = (line) => process.stdout.write(`${line}\n`);

const { page, offLoopback, requested, problems, close } = await open();
try {
  await page.goto(url);
  await page.fill("#token", token);
  await page.press("#token", "Enter");
  await page.locator("#views").waitFor({ state: "visible" });
  await page.click("#show-pool");
  await page.locator("#pool-login").waitFor({ state: "visible" });

  // A wrong county token is refused; the right one opens the pool.
  await page.fill("#pool-token", "bashu_500153_00000000_not-a-real-secret");
  await page.click("#pool-login button[type=submit]");
  await page.locator("#pool-login-error").filter({ hasText: "refused" }).waitFor();
  check(await page.locator("#pool-body").isHidden(), "the pool opened with a wrong token");
  await page.fill("#pool-token", countyToken);
  await page.click("#pool-login button[type=submit]");
  await page.locator("#pool-body").waitFor({ state: "visible" });

  // Traditional characters find the simplified story; the match is marked.
  await page.fill("#pool-q", "成渝中線高鐵");
  await page.press("#pool-q", "Enter");
  const hit = page.locator('.pool-hit[data-id="rail-1"]');
  await hit.waitFor();
  const marks = await hit.locator("h4 mark").allTextContents();
  check(marks.length > 0, "the headline has no highlighted words");
  check(!(await page.locator(".pool-hit[data-id=secret-1]").count()), "a story not shared with the county appeared");
  say("found rail-1");

  // Facets: clicking Sichuan keeps only Sichuan's stories.
  await page.fill("#pool-q", "");
  await page.press("#pool-q", "Enter");
  await page.locator(".pool-hit").first().waitFor();
  await page.locator("#pool-facets button", { hasText: "四川" }).first().click();
  await page.locator("#pool-facets button[aria-pressed=true]").waitFor();
  await page.waitForFunction(() => document.querySelector("#pool-total").textContent.length > 0);
  const filtered = await page.locator(".pool-hit").count();
  say(`filtered ${filtered}`);

  // The full text, and marking it used.
  await page.locator('.pool-hit[data-id="rail-1"] button').click();
  await page.locator("#story-dialog[open]").waitFor();
  const body = await page.locator("#story-body").textContent();
  check(body.includes("成渝中线高铁"), `the dialog does not show the story's text: ${body}`);
  await page.click("#story-use");
  await page.locator("#story-used").filter({ hasText: "Marked as used" }).waitFor();
  await page.screenshot({ path: screenshot, fullPage: true });
  say("used rail-1");
  await page.keyboard.press("Escape");

  // The trends panel drew the reuse.
  await page.locator("#trends-givetake li").first().waitFor();

  check(offLoopback.length === 0, `the page asked beyond loopback: ${offLoopback.join(", ")}`);
  check(!requested.some((r) => r.includes(countyToken) || r.includes(token)), "a token appeared in a URL");
  check(problems.length === 0, problems.join("; "));
  say(`done ${screenshot}`);
} finally {
  await close();
}
