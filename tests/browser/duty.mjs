// Drives the officers' mobile page's 值班 view (issue 33) in Debian's
// headless Chromium through playwright-core, as the member asked to take a
// duty would on a phone: log in, open 值班, accept the swap asked of them
// (it then awaits the director), ask another member to take one of their
// own duties, make the calendar subscription URL. One screenshot per step.
//
//   node tests/browser/duty.mjs --base http://127.0.0.1:8080 --member u2-officer \
//        --pin 246810 --with u4-officer --shots target/duty-screenshots
//
// Prints `SHOT <file>` per screenshot and `DONE` when every step passed
// (exit 0); a failed check prints `FAIL: <what>` on stderr, saves
// failure.png and exits 1. Chromium reaches only the gateway.

import { launch } from "./chromium.mjs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

const o = { chromium: process.env.CHROMIUM || "/usr/bin/chromium", stepTimeoutMs: 15_000 };
const a = process.argv.slice(2);
for (let i = 0; i < a.length; i += 2) {
  const k = a[i].replace(/^--/, "");
  if (!["base", "member", "pin", "with", "shots", "chromium"].includes(k) || i + 1 >= a.length) {
    console.error(`duty.mjs: bad argument ${a[i]}\nusage: node duty.mjs --base URL --member ID --pin PIN --with ID --shots DIR`);
    process.exit(2);
  }
  o[k] = a[i + 1];
}
for (const k of ["base", "member", "pin", "with", "shots"]) {
  if (!o[k]) { console.error(`duty.mjs: --${k} is required`); process.exit(2); }
}
o.base = o.base.replace(/\/+$/, "");
const origin = new URL(o.base).origin;

class Fail extends Error {}
function check(ok, what) { if (!ok) throw new Fail(what); }

const profile = await mkdtemp(path.join(tmpdir(), "hotline-chromium-"));
await mkdir(o.shots, { recursive: true });
let context, page, n = 0;
const pageErrors = [], foreign = [];

async function shot(name) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, width: window.innerWidth,
  }));
  check(scroll <= width, `${name}: the page is ${scroll}px wide on a ${width}px screen`);
  check(pageErrors.length === 0, `${name}: script errors on the page: ${pageErrors.join("; ")}`);
  check(foreign.length === 0, `${name}: Chromium tried to reach ${foreign.join(", ")}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  const file = path.join(o.shots, `${String(++n).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`SHOT ${file}`);
}

async function expectText(selector, want, what) {
  try {
    await page.locator(selector).filter({ hasText: want }).first().waitFor({ timeout: o.stepTimeoutMs });
  } catch (e) {
    const got = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => "(absent)");
    throw new Fail(`${what}: expected ${selector} to say ${JSON.stringify(want)}, it says ${JSON.stringify(got)}`);
  }
}

try {
  ({ context, page } = await launch({
    executablePath: o.chromium, profile, origin, stepTimeoutMs: o.stepTimeoutMs, pageErrors, foreign,
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  }));

  const resp = await page.goto(o.base + "/", { timeout: o.stepTimeoutMs });
  check(resp && resp.ok(), `GET / answered ${resp && resp.status()}`);
  await page.fill("#m", o.member);
  await page.fill("#p", o.pin);
  await page.tap("#go");
  await expectText("#tab-active", "待办", "ticket list after login");

  // 值班: the swap asked of me, with my own duties ahead.
  await page.tap("#duty");
  await expectText("h2", "我的值班", "the duty view");
  const asked = page.locator('.swap[data-state="asked"]').first();
  await asked.waitFor().catch(() => { throw new Fail("no swap asked of me is shown"); });
  check((await page.locator("#s-day option").count()) > 0, "none of my duties ahead is offered to hand on");
  await shot("duty");
  await asked.locator('button[data-action="accept"]').tap();
  await expectText("#d-ok", "待批准", "accepting: it awaits the director");
  await page.locator('.swap[data-state="accepted"]').first().waitFor()
    .catch(() => { throw new Fail("the swap is not shown accepted"); });
  await shot("accepted");

  // Ask another member to take my first duty ahead.
  await page.selectOption("#s-with", o.with);
  await page.fill("#s-note", "浏览器测试");
  await page.tap("#s-ask");
  await expectText("#d-ok", "已发送", "asking a swap");
  await page.locator('.swap[data-state="asked"] button[data-action="withdraw"]').first().waitFor()
    .catch(() => { throw new Fail("my request is not shown with a withdraw button"); });
  await shot("asked");

  // The calendar subscription URL, as a webcal link to this gateway.
  await page.tap("#c-sub");
  const link = page.locator("#c-url a");
  await link.waitFor().catch(() => { throw new Fail("no subscription URL shown"); });
  const href = await link.getAttribute("href");
  check(href && href.startsWith("webcal:") && href.includes("/calendar/") && href.endsWith(".ics"), `subscription link ${href}`);
  await shot("subscribed");
  check(foreign.length === 0, `Chromium tried to reach ${foreign.join(", ")}`);
  console.log("DONE");
  await finish(0);
} catch (e) {
  console.error(`FAIL: ${e instanceof Fail ? e.message : (e && e.stack) || e}`);
  if (page) await page.screenshot({ path: path.join(o.shots, "failure.png"), fullPage: true }).catch(() => {});
  await finish(1);
}

async function finish(code) {
  if (context) await context.close().catch(() => {});
  await rm(profile, { recursive: true, force: true }).catch(() => {});
  process.exit(code);
}
