// The duty board's 协同 Coverage tab in Debian's headless Chromium, driven by Playwright's core
// library. The Rust test `board::the_coverage_tab_in_headless_chromium` runs it against a real
// Bashu on real NATS with one active plan whose first phase was delivered and whose last phase
// is late, and reads one line per step on stdout:
//   "plan <plan id>"              the plan's card is shown
//   "delivered <phase>"           a delivered phase, as the page marks it
//   "late <phase>"                a late phase, marked late with its label
//   "done <screenshot>"
// Every request to anything but loopback is refused and recorded: the page must need none.
// Environment: BOARD_URL, BOARD_TOKEN (a viewer's staff token), PLAN_ID, BOARD_SCREENSHOT,
// CHROMIUM (optional).
import { check, open } from "./chromium.mjs";

const url = process.env.BOARD_URL;
const token = process.env.BOARD_TOKEN;
const planId = process.env.PLAN_ID;
const screenshot = process.env.BOARD_SCREENSHOT;
if (!url || !token || !planId || !screenshot) {
  throw new Error("BOARD_URL, BOARD_TOKEN, PLAN_ID and BOARD_SCREENSHOT are required");
}
const say = (line) => process.stdout.write(`${line}\n`);

const { page, offLoopback, requested, problems, close } = await open();
try {
  await page.goto(url);
  await page.fill("#token", token);
  await page.press("#token", "Enter");
  await page.locator("#views").waitFor({ state: "visible" });
  await page.click("#show-coverage");
  await page.locator("#coverage-view").waitFor({ state: "visible" });
  check((await page.getAttribute("#show-coverage", "aria-pressed")) === "true", "the tab is not marked as shown");

  const plan = page.locator(`.plan[data-plan="${planId}"]`);
  await plan.waitFor();
  const heading = await plan.locator("h3").textContent();
  check(heading.includes("渝昆高铁川渝段开通"), `the plan's topic is not its heading: ${heading}`);
  const meta = await plan.locator(".plan-meta").textContent();
  check(meta.includes("永川区"), `the proposer is not named: ${meta}`);
  say(`plan ${planId}`);

  const phases = await plan.locator(".phase").evaluateAll((items) => items.map((li) => li.dataset.phase));
  check(phases.join(",") === "experience,expert,impact", `the phases are not in order: ${phases}`);

  const delivered = plan.locator('.phase[data-phase="experience"]');
  check((await delivered.getAttribute("data-status")) === "delivered", "the delivered phase is not marked so");
  check((await delivered.textContent()).includes("已交付 Delivered"), "the delivered phase has no label");
  say("delivered experience");

  // The late phase: marked by its class (colour and bar) and by its words, and named by owner.
  const late = plan.locator('.phase[data-phase="impact"]');
  await page.waitForFunction(
    (id) => document.querySelector(`.plan[data-plan="${id}"] .phase[data-phase="impact"]`)?.dataset.status === "late",
    planId,
  );
  check(await late.evaluate((li) => li.classList.contains("late")), "the late phase is not marked late");
  const lateText = await late.textContent();
  check(lateText.includes("逾期 Late"), `the late phase has no label: ${lateText}`);
  check(lateText.includes("叙州区"), `the late phase's lead is not named: ${lateText}`);
  check((await plan.locator(".plan-meta").textContent()).includes("1 个阶段逾期"), "the plan does not count its late phase");
  const colour = await late.evaluate((li) => getComputedStyle(li).borderLeftColor);
  const onTimeColour = await delivered.evaluate((li) => getComputedStyle(li).borderLeftColor);
  check(colour !== onTimeColour, "a late phase looks like a delivered one");
  say("late impact");

  await page.screenshot({ path: screenshot, fullPage: true });
  check(offLoopback.length === 0, `the page asked beyond loopback: ${offLoopback.join(", ")}`);
  check(!requested.some((r) => r.includes(token)), "a token appeared in a URL");
  check(problems.length === 0, problems.join("; "));
  say(`done ${screenshot}`);
} finally {
  await close();
}
