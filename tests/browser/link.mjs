// Opens a text page's one-tap link on the officers' mobile page in Debian's
// headless Chromium (playwright-core), as an officer tapping it in WeCom
// would: the ticket opens signed in for it alone, 签收 is one tap. Then each
// link that must open nothing (the same link again, an expired one, a
// forged one): the PIN form, no ticket. Last the PIN, and that ticket shows.
//
//   node tests/browser/link.mjs --link URL --refused URL,URL,... --member ID \
//        --pin PIN --shots DIR
//
// It says on stdout:
//
//   ACKED <number>     the link opened its ticket and 签收 went through
//   REFUSED <i>        the i-th refused link showed the PIN form, no ticket
//   SHOWN <number>     after the PIN, the link's ticket is shown
//   SHOT <file>        a screenshot was saved
//   DONE               every step passed (exit 0)
//
// Any failed check prints `FAIL: <what>` on stderr, saves failure.png and
// exits 1. Chromium reaches only the gateway.

import { launch } from "./chromium.mjs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

function options() {
  const o = { chromium: process.env.CHROMIUM || "/usr/bin/chromium", stepTimeoutMs: 15_000, refused: [] };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const v = () => {
      if (i + 1 >= a.length) usage(`${a[i]} needs a value`);
      return a[++i];
    };
    switch (a[i]) {
      case "--link": o.link = v(); break;
      case "--refused": o.refused = v().split(",").filter(Boolean); break;
      case "--member": o.member = v(); break;
      case "--pin": o.pin = v(); break;
      case "--shots": o.shots = v(); break;
      case "--chromium": o.chromium = v(); break;
      case "--step-timeout-ms": o.stepTimeoutMs = Number(v()); break;
      default: usage(`unknown argument ${a[i]}`);
    }
  }
  for (const k of ["link", "member", "pin", "shots"]) if (!o[k]) usage(`--${k} is required`);
  return o;
}

function usage(msg) {
  console.error(`link.mjs: ${msg}\nusage: node link.mjs --link URL [--refused URL,...] --member ID --pin PIN --shots DIR`);
  process.exit(2);
}

class Fail extends Error {}
function check(ok, what) { if (!ok) throw new Fail(what); }

const o = options();
const origin = new URL(o.link).origin;
const ticket = new URLSearchParams(new URL(o.link).hash.slice(1)).get("ticket");
const profile = await mkdtemp(path.join(tmpdir(), "hotline-chromium-"));
await mkdir(o.shots, { recursive: true });

let context, page, n = 0;
const pageErrors = [], foreign = [];

async function shot(name) {
  check(pageErrors.length === 0, `${name}: script errors on the page: ${pageErrors.join("; ")}`);
  check(foreign.length === 0, `${name}: Chromium tried to reach ${foreign.join(", ")}`);
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

// A link that opens nothing: the PIN form, a word why, no ticket, no token.
async function refused(url, i) {
  // As a tap in another app does: a new load of the page.
  await page.goto("about:blank");
  await page.goto(url, { timeout: o.stepTimeoutMs });
  await expectText("h3", "值班人员登录", `refused link ${i}: the PIN form`);
  await expectText("#err", "此链接已使用或已失效", `refused link ${i}: why`);
  check(!(await page.locator("#num").count()), `refused link ${i}: a ticket is shown`);
  check(!(await page.evaluate(() => localStorage.getItem("token"))), `refused link ${i}: a token is stored`);
  check(!(await page.evaluate(() => location.hash)), `refused link ${i}: the link stays in the address bar`);
  await shot(`refused-${i}`);
  console.log(`REFUSED ${i}`);
}

try {
  ({ context, page } = await launch({
    executablePath: o.chromium, profile, origin, stepTimeoutMs: o.stepTimeoutMs, pageErrors, foreign,
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  }));

  // The link: its ticket, signed in for it alone, no PIN asked.
  await page.goto(o.link, { timeout: o.stepTimeoutMs });
  await expectText("#num", ticket, "the link's ticket");
  await expectText("#state", "待签收", "the link's ticket");
  await expectText("#linked-bar", "仅可处理本工单", "the link's session says what it is for");
  check(!(await page.locator("#back").count()), "a link's session offers the list");
  check(!(await page.locator("#callback, #add-note, #play, #close").count()), "a link's session offers more than its steps");
  check(!(await page.evaluate(() => location.hash)), "the link stays in the address bar");
  check(!(await page.evaluate(() => localStorage.getItem("token"))), "the link's session was stored");
  await shot("link-opened");
  await page.tap("#act");
  await expectText("#state", "已签收", "after 签收 through the link");
  await expectText("#ok", "已签收", "after 签收 through the link");
  await expectText("#act", "出警", "the next step through the link");
  await shot("link-acknowledged");
  console.log(`ACKED ${ticket}`);

  for (const [i, url] of o.refused.entries()) await refused(url, i);

  // The PIN, then the ticket the link named (acknowledged once, by the link).
  await page.fill("#m", o.member);
  await page.fill("#p", o.pin);
  await page.tap("#go");
  await expectText("#num", ticket, "the link's ticket after the PIN");
  await expectText("#state", "已签收", "the link's ticket after the PIN");
  await expectText("#back", "返回列表", "a PIN's session has the list");
  await shot("pin-then-ticket");
  console.log(`SHOWN ${ticket}`);
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
