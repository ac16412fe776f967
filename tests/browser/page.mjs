// Drives the officers' mobile page (served by the gateway at `/`) in Debian's
// headless Chromium through playwright-core, as an officer on a phone would:
// log in, receive a page live, open the ticket, play its recording,
// 签收, 出警 (its arrival deadline shown), mark it a property lead and record
// the check, 到场, 办结 with the measures taken, reopen the page, log out.
// One screenshot per step.
//
//   node tests/browser/page.mjs --base http://127.0.0.1:8080 --member u1-officer \
//        --pin 246810 --shots target/browser-screenshots
//
// (or HOTLINE_BASE, HOTLINE_MEMBER, HOTLINE_PIN, HOTLINE_SHOTS; CHROMIUM
// overrides /usr/bin/chromium). It talks to its driver on stdout and stdin:
//
//   READY            logged in, the live stream connected: send the page now
//   PAGED <number>   the page arrived live; then one line is read from stdin
//                    (any line, or end of input) before the ticket is opened,
//                    so the driver can wait for what it wants first (when
//                    stdin is a terminal, or with --no-wait, it goes straight on)
//   SHOT <file>      a screenshot was saved
//   DONE <number>    every step passed (exit 0)
//
// Any failed check prints `FAIL: <what>` on stderr, saves failure.png and
// exits 1. Chromium reaches only the gateway: any other request fails the run.

import { launch } from "./chromium.mjs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";

function options() {
  const o = {
    base: process.env.HOTLINE_BASE,
    member: process.env.HOTLINE_MEMBER,
    pin: process.env.HOTLINE_PIN,
    shots: process.env.HOTLINE_SHOTS,
    chromium: process.env.CHROMIUM || "/usr/bin/chromium",
    pageTimeoutMs: 90_000,
    stepTimeoutMs: 15_000,
    wait: !process.stdin.isTTY,
    requireRecording: false,
  };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const v = () => {
      if (i + 1 >= a.length) usage(`${a[i]} needs a value`);
      return a[++i];
    };
    switch (a[i]) {
      case "--base": o.base = v(); break;
      case "--member": o.member = v(); break;
      case "--pin": o.pin = v(); break;
      case "--shots": o.shots = v(); break;
      case "--chromium": o.chromium = v(); break;
      case "--page-timeout-ms": o.pageTimeoutMs = Number(v()); break;
      case "--step-timeout-ms": o.stepTimeoutMs = Number(v()); break;
      case "--no-wait": o.wait = false; break;
      case "--require-recording": o.requireRecording = true; break;
      default: usage(`unknown argument ${a[i]}`);
    }
  }
  for (const k of ["base", "member", "pin", "shots"]) if (!o[k]) usage(`--${k} is required`);
  o.base = o.base.replace(/\/+$/, "");
  return o;
}

function usage(msg) {
  console.error(`page.mjs: ${msg}\nusage: node page.mjs --base URL --member ID --pin PIN --shots DIR ` +
    `[--require-recording] [--no-wait] [--page-timeout-ms N] [--step-timeout-ms N] [--chromium PATH]`);
  process.exit(2);
}

class Fail extends Error {}
function check(ok, what) { if (!ok) throw new Fail(what); }

const o = options();
const origin = new URL(o.base).origin;
const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const profile = await mkdtemp(path.join(tmpdir(), "hotline-chromium-"));
await mkdir(o.shots, { recursive: true });

let context, page, n = 0;
const pageErrors = [], foreign = [];

// Counts the alarms the page raises (vibration, tones) without changing them.
function instrument() {
  window.__alarms = { vibrate: 0, tones: 0 };
  const vibrate = navigator.vibrate ? navigator.vibrate.bind(navigator) : null;
  navigator.vibrate = (p) => { window.__alarms.vibrate++; return vibrate ? vibrate(p) : true; };
  if (window.OscillatorNode) {
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (...args) { window.__alarms.tones++; return start.apply(this, args); };
  }
}

async function shot(name) {
  // Works on a phone screen: nothing wider than the viewport.
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, width: window.innerWidth,
  }));
  check(scroll <= width, `${name}: the page is ${scroll}px wide on a ${width}px screen`);
  check(pageErrors.length === 0, `${name}: script errors on the page: ${pageErrors.join("; ")}`);
  check(foreign.length === 0, `${name}: Chromium tried to reach ${foreign.join(", ")}`);
  // From the top, so the sticky header sits where a phone shows it.
  await page.evaluate(() => window.scrollTo(0, 0));
  const file = path.join(o.shots, `${String(++n).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`SHOT ${file}`);
}

async function text(selector) {
  return (await page.locator(selector).first().textContent({ timeout: o.stepTimeoutMs })) ?? "";
}

async function expectText(selector, want, what) {
  try {
    await page.locator(selector).filter({ hasText: want }).first().waitFor({ timeout: o.stepTimeoutMs });
  } catch (e) {
    const got = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => "(absent)");
    throw new Fail(`${what}: expected ${selector} to say ${JSON.stringify(want)}, it says ${JSON.stringify(got)}`);
  }
}

async function expectState(label, what) {
  await expectText("#state", label, what);
}

try {
  ({ context, page } = await launch({
    executablePath: o.chromium, profile, origin, stepTimeoutMs: o.stepTimeoutMs, pageErrors, foreign,
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    userAgent: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    init: instrument,
  }));

  // Log in: a wrong PIN is refused in Chinese, the right one lets in.
  const resp = await page.goto(o.base + "/", { timeout: o.stepTimeoutMs });
  check(resp && resp.ok(), `GET / answered ${resp && resp.status()}`);
  check((await page.locator("html").getAttribute("lang")) === "zh-CN", "the page is not marked zh-CN");
  await expectText("h3", "值班人员登录", "login form");
  await page.fill("#m", o.member);
  await shot("login");
  await page.fill("#p", "000000" === o.pin ? "999999" : "000000");
  await page.tap("#go");
  await expectText("#err", "人员编号或PIN错误", "wrong PIN");
  await shot("login-refused");
  await page.fill("#p", o.pin);
  await page.tap("#go");
  await expectText("#tab-active", "待办", "ticket list after login");
  await page.locator('#live[data-state="on"]').waitFor({ timeout: o.stepTimeoutMs })
    .catch(() => { throw new Fail("the live stream (/events) did not connect"); });
  check((await text("#live")).includes("实时"), "the live indicator does not say 实时");
  await shot("logged-in");
  console.log("READY");

  // The page arrives live: a new card on top, with vibration and a tone.
  const fresh = page.locator("#list .ticket.new").first();
  try {
    await fresh.waitFor({ timeout: o.pageTimeoutMs });
  } catch (e) {
    throw new Fail(`no page arrived live within ${o.pageTimeoutMs} ms`);
  }
  const number = await fresh.getAttribute("data-n");
  check(number, "the new card names no ticket");
  const top = await page.locator("#list .ticket").first().getAttribute("data-n");
  check(top === number, `the newest page ${number} is not on top (${top} is)`);
  const alarms = await page.evaluate(() => window.__alarms);
  check(alarms.vibrate >= 1, "the page did not vibrate");
  check(alarms.tones >= 1, "the page played no tone");
  check((await page.title()).includes("新工单"), `the title does not announce it: ${await page.title()}`);
  await shot("paged");
  console.log(`PAGED ${number}`);
  if (o.wait) await stdinLines.next();

  // The ticket listed from the API (not only the page's own text), open.
  const card = page.locator(`#list .ticket[data-n="${number}"]:not([data-pending])`);
  const listedBy = Date.now() + o.stepTimeoutMs;
  while (!(await card.count())) {
    check(Date.now() < listedBy, `ticket ${number} never appeared in the list from the API`);
    await page.tap("#tab-active");
    await card.waitFor({ timeout: 1000 }).catch(() => {});
  }
  await expectText(`#list .ticket[data-n="${number}"] .state`, "待签收", "the paged ticket in the list");
  await card.tap();
  await expectText("#num", number, "ticket view");
  await expectState("待签收", "ticket view");
  await expectText("#act", "签收", "the next step");
  await shot("ticket");

  // The call's recording plays in the page.
  if (await page.locator("#play").count()) {
    await page.tap("#play");
    await page.waitForFunction(() => {
      const a = document.getElementById("audio");
      return a && !a.hidden && a.readyState >= 1 && a.duration > 0;
    }, null, { timeout: o.stepTimeoutMs }).catch(async () => {
      throw new Fail(`the recording did not load: ${await text("#rec").catch(() => "")}`);
    });
    await page.evaluate(() => document.getElementById("audio").pause());
    await shot("recording");
  } else {
    check(!o.requireRecording, `ticket ${number} offers no recording to play`);
  }

  // 签收.
  await page.tap("#act");
  await expectState("已签收", "after 签收");
  await expectText("#ok", "已签收", "after 签收");
  await shot("acknowledged");

  // 出警: who goes (this officer ticked), the vehicle.
  await expectText("#act", "出警", "the dispatch step");
  check(await page.locator(`#officers input[value="${o.member}"]`).isChecked(), "the officer is not ticked to go");
  if (!(await page.inputValue("#veh"))) await page.fill("#veh", "鲁B·J0101");
  await shot("dispatch-form");
  await page.tap("#act");
  await expectState("已出警", "after 出警");
  await expectText("dl", "鲁B·J0101", "the vehicle on the register");
  // The arrival clock started at 出警: its deadline on the register.
  await expectText("#dl-arrive_by", ":", "the arrival deadline after 出警");
  await shot("dispatched");

  // A property lead (财产线索): marked urgent, then its check recorded.
  await page.locator('#property-form label:has(#prop-urgent)').tap();
  check(await page.locator("#prop-urgent").isChecked(), "紧急 did not tick");
  await page.tap("#mark-property");
  await expectText("#property", "待核查", "the property mark");
  await expectText("#property", "紧急", "the property mark's urgency");
  await expectText("#dl-verify_by", ":", "the verification deadline");
  await page.tap("#verify-property");
  await expectText("#prop-err", "请填写核查结果", "a check without a result");
  await page.fill("#prop-result", "查到被执行人名下车辆一辆");
  await page.tap("#verify-property");
  await expectText("#property", "已核查", "the check on the register");
  check(!(await page.locator("#property-form").count()), "a checked property lead still offers the form");
  await shot("property-checked");

  // 到场.
  await expectText("#act", "到达现场", "the arrival step");
  await page.tap("#act");
  await expectState("已到场", "after 到场");
  await shot("on-scene");

  // 办结: measures and a result are required, then closed.
  await page.tap("#close");
  await expectText("#err", "请选择处置措施", "closing without a measure");
  await expectState("已到场", "a refused close changes nothing");
  await shot("close-refused");
  await page.locator('#meas label:has(input[value="detention"])').tap();
  await page.locator('#meas label:has(input[value="seizure"])').tap();
  check(await page.locator('#meas input[value="detention"]').isChecked(), "拘留 did not tick");
  await page.fill("#res", "已拘留被执行人，扣押车辆一辆");
  await shot("close-form");
  await page.tap("#close");
  await expectState("已办结", "after 办结");
  await expectText("dl", "拘留、扣押", "the measures on the register");
  check(!(await page.locator("#act, #close").count()), "a closed ticket still offers an action");
  await shot("closed");

  // Back to the list: no longer open, found among the finished ones.
  await page.tap("#back");
  await expectText("#tab-active", "待办（0）", "the open list after closing");
  await page.tap("#tab-done");
  await expectText(`#list .ticket[data-n="${number}"] .state`, "已办结", "the finished list");
  await shot("list-closed");

  // Reopened (the phone's browser reloads it): still logged in and live;
  // without a tap yet, it offers to turn the alarm sound on.
  await page.reload({ timeout: o.stepTimeoutMs });
  await expectText("#tab-active", "待办（0）", "the list after a reload");
  await page.locator('#live[data-state="on"]').waitFor({ timeout: o.stepTimeoutMs })
    .catch(() => { throw new Fail("the live stream did not reconnect after a reload"); });
  check(await page.locator("#sound").isVisible(), "no offer to turn the alarm sound on after a reload");
  await shot("reloaded");
  await page.tap("#sound");
  check(!(await page.locator("#sound").isVisible()), "the sound offer stays after a tap");
  // The tap was the hint's alone: the list's bar below it, which moves up
  // when the hint goes, took no click (it once opened the duty view).
  check(await page.locator("#tab-active").isVisible(), "the tap on the sound offer left the list");

  // Log out: back to the login form, the token forgotten.
  await page.tap("#out");
  await expectText("h3", "值班人员登录", "after logging out");
  check(!(await page.evaluate(() => localStorage.getItem("token"))), "the token is still stored after logout");
  await shot("logged-out");
  check(foreign.length === 0, `Chromium tried to reach ${foreign.join(", ")}`);
  console.log(`DONE ${number}`);
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
