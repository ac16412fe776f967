// Drives the command center's board (`/board`) in Debian's headless Chromium
// through playwright-core, as the director at the wall screen would: log in,
// see the call in progress and the open lead whose 签收 clock has run past
// five minutes (red), then — once the driver acknowledges it through the
// API — see it move to 已签收 live; then the statistics page. Screenshots of
// the wall (1920×1080) and the phone (390×844) layouts, and the statistics;
// last the daily activity register on the mobile page (an entry, corrected).
//
//   node tests/browser/board.mjs --base URL --member ID --pin PIN --shots DIR \
//        --late TICKET --call TICKET
//
// Lines on stdout: SHOT <file>; READY (the late lead is shown red: the
// driver acknowledges it now); DONE. A failed check prints `FAIL: <what>`
// on stderr and exits 1. Chromium reaches only the gateway.

import { chromium } from "playwright-core";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

const o = { chromium: process.env.CHROMIUM || "/usr/bin/chromium", stepTimeoutMs: 30000 };
const a = process.argv.slice(2);
for (let i = 0; i < a.length; i++) {
  const v = () => a[++i];
  switch (a[i]) {
    case "--base": o.base = v().replace(/\/+$/, ""); break;
    case "--member": o.member = v(); break;
    case "--pin": o.pin = v(); break;
    case "--shots": o.shots = v(); break;
    case "--late": o.late = v(); break;
    case "--call": o.call = v(); break;
    default: console.error(`board.mjs: unknown argument ${a[i]}`); process.exit(2);
  }
}
for (const k of ["base", "member", "pin", "shots", "late", "call"]) {
  if (!o[k]) { console.error(`board.mjs: --${k} is required`); process.exit(2); }
}

class Fail extends Error {}
function check(ok, what) { if (!ok) throw new Fail(what); }
const origin = new URL(o.base).origin;
const profile = await mkdtemp(path.join(tmpdir(), "hotline-board-"));
await mkdir(o.shots, { recursive: true });
let context, page, n = 0;
const pageErrors = [], foreign = [];

async function shot(name) {
  check(pageErrors.length === 0, `${name}: script errors on the page: ${pageErrors.join("; ")}`);
  check(foreign.length === 0, `${name}: Chromium tried to reach ${foreign.join(", ")}`);
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  check(scroll <= width, `${name}: the board is ${scroll}px wide on a ${width}px screen`);
  const file = path.join(o.shots, `board-${String(++n).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file });
  console.log(`SHOT ${file}`);
}

async function waitFor(selector, what) {
  try { await page.locator(selector).first().waitFor({ timeout: o.stepTimeoutMs }); }
  catch (e) { throw new Fail(`${what}: ${selector} did not show`); }
}

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: o.chromium,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${new URL(o.base).hostname}`,
    ],
    viewport: { width: 1920, height: 1080 },
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
  });
  context.setDefaultTimeout(o.stepTimeoutMs);
  page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  context.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith("blob:") && !u.startsWith("data:") && new URL(u).origin !== origin) foreign.push(u);
  });
  const resp = await page.goto(o.base + "/board");
  check(resp && resp.ok(), `GET /board answered ${resp && resp.status()}`);
  await waitFor("#login", "the login form");
  await page.fill("#member", o.member);
  await page.fill("#pin", o.pin);
  await page.click("#go");
  // The call in progress, and the late lead in red with its 签收 clock past 5:00.
  await waitFor(`[data-call="${o.call}"]`, "the call in progress");
  const late = `.ticket.late[data-ticket="${o.late}"]`;
  await waitFor(late, "the lead past five minutes, in red");
  const ackClock = await page.locator(`${late} .clock.late[data-clock="签收"]`).first().textContent();
  const [m] = (ackClock || "").replace("签收", "").trim().split(":").map(Number);
  check(m >= 5, `the 签收 clock says ${ackClock}, past five minutes expected`);
  await page.locator('#live[data-state="on"]').waitFor().catch(() => { throw new Fail("the live stream did not connect"); });
  const next = await page.locator("#next").textContent();
  check(/下次交接 \d\d:\d\d → (值班|工作时间)/.test(next || ""), `who takes over next: ${next}`);
  await shot("wall");
  console.log("READY");
  // Acknowledged by the driver: it moves, live, and its 签收 clock stops.
  await waitFor(`.ticket[data-ticket="${o.late}"][data-state="acknowledged"]`, "the acknowledgement on the board");
  await waitFor(`.ticket[data-ticket="${o.late}"] .clock.done[data-clock="签收"]`, "the 签收 clock stopped");
  await shot("wall-acknowledged");
  await page.setViewportSize({ width: 390, height: 844 });
  await waitFor(`.ticket[data-ticket="${o.late}"]`, "the phone layout");
  await shot("phone");
  // The statistics of today, drawn by the gateway (the same SVG as the report).
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.goto(o.base + "/board/stats");
  await waitFor("#range", "the statistics' range");
  // From two days back (the late lead was reported six minutes ago, maybe
  // yesterday in Qingdao) to today.
  const day = (t) => new Intl.DateTimeFormat("sv-SE", { timeZone: "Asia/Shanghai" }).format(t);
  await page.fill("#from", day(new Date(Date.now() - 2 * 86400000)));
  await page.fill("#to", day(new Date()));
  await page.click("#show");
  await page.locator("#report svg polyline#per-day").waitFor({ state: "attached" })
    .catch(() => { throw new Fail("the statistics' per-day series did not show"); });
  const figures = await page.locator("#report").textContent();
  check(figures.includes("举报线索统计"), "the statistics' heading");
  // The two tickets (the late lead and the call) are counted.
  check(/共 2 件/.test(figures), `the statistics count today's 2 tickets: ${figures.slice(0, 120)}`);
  await shot("stats");
  // The daily activity register on the mobile page: an entry, then its
  // correction (a new entry; the first marked corrected).
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(o.base + "/");
  await waitFor("#m", "the mobile page's login");
  await page.fill("#m", o.member);
  await page.fill("#p", o.pin);
  await page.click("#go");
  await waitFor("#register", "the register's button");
  await page.click("#register");
  await waitFor("#a-save", "the register's form");
  await page.fill("#a-time", "09:30");
  await page.fill("#a-case", "(2026)鲁0203执1号");
  await page.selectOption("#a-measure", "search");
  await page.fill("#a-result", "搜查住所，未发现");
  await page.click("#a-save");
  await waitFor(".entry button.fix", "the entry recorded");
  await page.click(".entry button.fix");
  await page.fill("#a-result", "搜查住所，查获车辆一辆");
  await page.click("#a-save");
  await waitFor(".entry .meta >> text=已更正", "the first entry marked corrected");
  const count = await page.locator(".entry").count();
  check(count === 2, `two entries after a correction, the page shows ${count}`);
  await shot("register");
  console.log("DONE");
} catch (e) {
  if (page) await page.screenshot({ path: path.join(o.shots, "board-failure.png") }).catch(() => {});
  console.error(`FAIL: ${e instanceof Fail ? e.message : e.stack || e}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  await rm(profile, { recursive: true, force: true }).catch(() => {});
}
