// The statistics page (`/board/stats`) and the monthly report
// (`/board/report`) in Debian's headless Chromium through playwright-core,
// as the director reads them: log in on the board, show a range's figures
// and charts, then a month's report; screenshots of both; the visible text
// checked for English ids (a category, state or member id shown as stored).
// Last the monthly report alone (as the API serves it) printed to PDF, A4.
//
//   node tests/browser/report.mjs --base URL --member ID --pin PIN --shots DIR \
//        --from D --to D --month YYYY-MM --english id,id,... --pdf FILE
//
// Lines on stdout: SHOT <file>; PDF <file>; DONE. A failed check prints
// `FAIL: <what>` on stderr and exits 1. Chromium reaches only the gateway.

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
    case "--from": o.from = v(); break;
    case "--to": o.to = v(); break;
    case "--month": o.month = v(); break;
    case "--english": o.english = v().split(","); break;
    case "--pdf": o.pdf = v(); break;
    default: console.error(`report.mjs: unknown argument ${a[i]}`); process.exit(2);
  }
}
for (const k of ["base", "member", "pin", "shots", "from", "to", "month", "english", "pdf"]) {
  if (!o[k]) { console.error(`report.mjs: --${k} is required`); process.exit(2); }
}

class Fail extends Error {}
function check(ok, what) { if (!ok) throw new Fail(what); }
const origin = new URL(o.base).origin;
const profile = await mkdtemp(path.join(tmpdir(), "hotline-report-"));
await mkdir(o.shots, { recursive: true });
let context, page;
const pageErrors = [], foreign = [];

async function shot(name) {
  check(pageErrors.length === 0, `${name}: script errors on the page: ${pageErrors.join("; ")}`);
  check(foreign.length === 0, `${name}: Chromium tried to reach ${foreign.join(", ")}`);
  const file = path.join(o.shots, `report-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`SHOT ${file}`);
}

// No English id as a word of the visible text.
async function chinese(what) {
  const text = await page.locator("#report").innerText();
  for (const id of o.english) {
    check(!new RegExp(`(^|[^A-Za-z0-9_-])${id}($|[^A-Za-z0-9_-])`).test(text), `${what} shows "${id}"`);
  }
  return text;
}

async function waitFor(selector, what) {
  try { await page.locator(selector).first().waitFor({ timeout: o.stepTimeoutMs, state: "attached" }); }
  catch (e) { throw new Fail(`${what}: ${selector} did not show`); }
}

try {
  ({ context, page } = await launch({
    executablePath: o.chromium, profile, origin, stepTimeoutMs: o.stepTimeoutMs, pageErrors, foreign,
    viewport: { width: 1920, height: 1080 },
  }));
  await page.goto(o.base + "/board/stats");
  await waitFor("#login", "the login form");
  await page.fill("#member", o.member);
  await page.fill("#pin", o.pin);
  await page.click("#go");
  await waitFor("#range", "the statistics' range");
  await page.fill("#from", o.from);
  await page.fill("#to", o.to);
  await page.click("#show");
  await waitFor('#report figure[data-chart="per-day"] svg', "the per-day chart");
  const stats = await chinese("the statistics page");
  check(stats.includes("执行线索"), "the statistics name the category 执行线索");
  await shot("stats");
  await page.goto(`${o.base}/board/report?month=${o.month}`);
  await waitFor('#report figure[data-chart="minutes"] svg', "the monthly report's charts");
  const month = await chinese("the monthly report");
  check(month.includes("执行指挥中心工作月报"), "the monthly report's title");
  await shot("monthly");
  // The report alone, as the API serves it, printed as the browser prints it.
  const html = await page.evaluate(async (m) => {
    const r = await fetch(`/api/v1/stats/monthly?month=${m}`,
      { headers: { Authorization: "Bearer " + sessionStorage.getItem("board-token") } });
    return r.ok ? r.text() : `HTTP ${r.status}`;
  }, o.month);
  check(html.startsWith("<!doctype html>"), `the monthly report from the API: ${html.slice(0, 80)}`);
  await page.goto("about:blank");
  await page.setContent(html);
  await page.pdf({ path: o.pdf, format: "A4", printBackground: true });
  console.log(`PDF ${o.pdf}`);
  console.log("DONE");
} catch (e) {
  if (page) await page.screenshot({ path: path.join(o.shots, "report-failure.png") }).catch(() => {});
  console.error(`FAIL: ${e instanceof Fail ? e.message : e.stack || e}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  await rm(profile, { recursive: true, force: true }).catch(() => {});
}
