// Drives the command center's board (`/board`) in Debian's headless Chromium
// through playwright-core, as the director at the wall screen would: log in,
// see the call in progress and the open lead whose 签收 clock has run past
// five minutes (red), then — once the driver acknowledges it through the
// API — see it move to 已签收 live; then the statistics page. Screenshots of
// the wall (1920×1080) and the phone (390×844) layouts, and the statistics;
// last the daily activity register on the mobile page (an entry, corrected).
// Issue 32's kinds on the wall: a consultation (its handler and answer
// deadline, no five-minute clock), a partner's call with its pickup clock
// and one past it (red), three leads on one case (本案7日内第N次举报, the
// third sent to the first one's officers, the first 超时未到场); a screenshot
// of the whole page.
//
//   node tests/browser/board.mjs --base URL --member ID --pin PIN --shots DIR \
//        --late TICKET --call TICKET --consultation TICKET --handler NAME \
//        --answer-by "M月D日 HH:MM" --partner TICKET --partner-name NAME \
//        --partner-late TICKET --linked FIRST,SECOND,THIRD --received N
//
// Lines on stdout: SHOT <file>; READY (the late lead is shown red: the
// driver acknowledges it now); FIGURES <json> (the statistics page's
// figures by their data-figure); DONE. A failed check prints `FAIL: <what>`
// on stderr and exits 1. Chromium reaches only the gateway.

import { launch } from "./chromium.mjs";
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
    case "--consultation": o.consultation = v(); break;
    case "--handler": o.handler = v(); break;
    case "--answer-by": o.answerBy = v(); break;
    case "--partner": o.partner = v(); break;
    case "--partner-name": o.partnerName = v(); break;
    case "--partner-late": o.partnerLate = v(); break;
    case "--linked": o.linked = v().split(","); break;
    case "--received": o.received = v(); break;
    default: console.error(`board.mjs: unknown argument ${a[i]}`); process.exit(2);
  }
}
for (const k of ["base", "member", "pin", "shots", "late", "call", "consultation", "handler", "answerBy",
  "partner", "partnerName", "partnerLate", "linked", "received"]) {
  if (!o[k]) { console.error(`board.mjs: --${k} is required`); process.exit(2); }
}

class Fail extends Error {}
function check(ok, what) { if (!ok) throw new Fail(what); }
const origin = new URL(o.base).origin;
const profile = await mkdtemp(path.join(tmpdir(), "hotline-board-"));
await mkdir(o.shots, { recursive: true });
let context, page, n = 0;
const pageErrors = [], foreign = [];

async function shot(name, fullPage = false) {
  check(pageErrors.length === 0, `${name}: script errors on the page: ${pageErrors.join("; ")}`);
  check(foreign.length === 0, `${name}: Chromium tried to reach ${foreign.join(", ")}`);
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  check(scroll <= width, `${name}: the board is ${scroll}px wide on a ${width}px screen`);
  const file = path.join(o.shots, `board-${String(++n).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage });
  console.log(`SHOT ${file}`);
}

async function waitFor(selector, what) {
  try { await page.locator(selector).first().waitFor({ timeout: o.stepTimeoutMs }); }
  catch (e) { throw new Fail(`${what}: ${selector} did not show`); }
}

try {
  ({ context, page } = await launch({
    executablePath: o.chromium, profile, origin, stepTimeoutMs: o.stepTimeoutMs, pageErrors, foreign,
    viewport: { width: 1920, height: 1080 },
  }));
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
  // Issue 32's kinds.
  const card = (n) => `.ticket[data-ticket="${n}"]`;
  const text = async (selector, what) => {
    await waitFor(selector, what);
    return (await page.locator(selector).first().textContent()) || "";
  };
  const ask = await text(card(o.consultation), "the consultation");
  for (const want of ["咨询", `承办 ${o.handler}`, `答复期限 ${o.answerBy}`]) {
    check(ask.includes(want), `the consultation shows ${want}: ${ask}`);
  }
  check(await page.locator(`${card(o.consultation)} [data-clock]`).count() === 0,
    `a consultation has no five-minute clock: ${ask}`);
  const police = await text(card(o.partner), "the partner's call");
  check(police.includes("公安/协助单位") && police.includes(o.partnerName), `the partner named: ${police}`);
  // 25 minutes to the pickup when seeded: some seconds gone, not red (more
  // than warn_minutes, 10, left).
  const pickup = page.locator(`${card(o.partner)} [data-clock="接人"]`).first();
  const left = ((await pickup.textContent()) || "").match(/^接人 剩 (\d+):\d\d$/);
  check(left && Number(left[1]) <= 24 && Number(left[1]) >= 10, `the pickup clock: ${await pickup.textContent()}`);
  check(!(await pickup.getAttribute("class")).includes("late"), "the pickup clock with time left is not red");
  // Three minutes past its pickup deadline: red, and the ticket too.
  const over = await text(`.ticket.late${card(o.partnerLate)} .clock.late[data-clock="接人"]`, "the missed pickup, red");
  const past = over.match(/^接人 超时 (\d+):\d\d$/);
  check(past && Number(past[1]) >= 3, `the missed pickup's clock: ${over}`);
  const [first, second, third] = o.linked;
  const two = await text(card(second), "the second lead on the case");
  check(two.includes("本案7日内第2次举报"), `the second report on the case: ${two}`);
  const three = await text(card(third), "the third lead on the case");
  check(three.includes("本案7日内第3次举报") && three.includes(`已交 ${first} 的出警人员`),
    `the third report, sent to the first one's officers: ${three}`);
  const noShow = await text(`.ticket.late${card(first)} [data-badge="arrival"]`, "the dispatch past its arrival deadline, red");
  check(noShow === "超时未到场", `the overdue arrival: ${noShow}`);
  await shot("wall-kinds", true);
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
  await page.locator('#report figure[data-chart="per-day"] svg').waitFor({ state: "attached" })
    .catch(() => { throw new Fail("the statistics' per-day series did not show"); });
  const figures = await page.locator("#report").textContent();
  check(figures.includes("举报线索统计"), "the statistics' heading");
  // Today's tickets are counted (the late lead, the call, issue 32's kinds).
  check(figures.includes(`共 ${o.received} 件`), `the statistics count today's ${o.received} tickets: ${figures.slice(0, 120)}`);
  // The new kinds' figures, for the driver to check.
  const kinds = await page.$$eval("#report tr[data-figure]",
    (rows) => Object.fromEntries(rows.map((r) => [r.dataset.figure, r.lastElementChild.textContent])));
  console.log(`FIGURES ${JSON.stringify(kinds)}`);
  await shot("stats", true);
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
