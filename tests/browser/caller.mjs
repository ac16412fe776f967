// Drives the public caller page (served by the gateway at `/call`) in
// Debian's headless Chromium through playwright-core, as a member of the
// public on a phone would: press 「拨打举报电话」, hear the greeting, key a
// category on the page's keypad, read the ticket number, hang up. The
// microphone is Chromium's fake device playing a WAV file; what the page
// hears is captured (WebAudio, 10 ms RMS envelope) for the driver to compare
// with the greeting. One screenshot per step.
//
//   node tests/browser/caller.mjs --base http://127.0.0.1:8080 --mic speech.wav \
//        --shots target/browser-screenshots/caller --key 1
//
// Lines on stdout:
//   SHOT <file>         a screenshot was saved
//   TICKET <number>     the ticket number the page shows
//   HEARD <v,v,...>     the envelope of what the page heard (10 ms RMS)
//   DONE                every step passed (exit 0)
// A failed check prints `FAIL: <what>` on stderr, saves failure.png, exits 1.
// Chromium reaches only the gateway.

import { launch } from "./chromium.mjs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

function options() {
  const o = { chromium: process.env.CHROMIUM || "/usr/bin/chromium", key: "1", listenMs: 7000, stepTimeoutMs: 20000 };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const v = () => a[++i];
    switch (a[i]) {
      case "--base": o.base = v(); break;
      case "--mic": o.mic = v(); break;
      case "--shots": o.shots = v(); break;
      case "--key": o.key = v(); break;
      case "--listen-ms": o.listenMs = Number(v()); break;
      case "--step-timeout-ms": o.stepTimeoutMs = Number(v()); break;
      case "--chromium": o.chromium = v(); break;
      default: console.error(`caller.mjs: unknown argument ${a[i]}`); process.exit(2);
    }
  }
  for (const k of ["base", "mic", "shots"]) if (!o[k]) { console.error(`caller.mjs: --${k} is required`); process.exit(2); }
  return o;
}

class Fail extends Error {}
function check(ok, what) { if (!ok) throw new Fail(what); }

const o = options();
const origin = new URL(o.base).origin;
const profile = await mkdtemp(path.join(tmpdir(), "hotline-caller-"));
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
  const file = path.join(o.shots, `${String(++n).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`SHOT ${file}`);
}

async function state(want, what) {
  try {
    await page.waitForFunction((w) => window.hotline && window.hotline.state === w, want, { timeout: o.stepTimeoutMs });
  } catch (e) {
    const got = await page.evaluate(() => [window.hotline && window.hotline.state, document.getElementById("state").textContent]);
    throw new Fail(`${what}: the call is ${JSON.stringify(got)}, not ${want}`);
  }
}

try {
  ({ context, page } = await launch({
    executablePath: o.chromium, profile, origin, stepTimeoutMs: o.stepTimeoutMs, pageErrors, foreign,
    args: [
      // A microphone that plays the file; no permission prompt; sound
      // without a gesture (the capture's AudioContext); loopback media.
      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${o.mic}`,
      "--autoplay-policy=no-user-gesture-required",
      "--allow-loopback-in-peer-connection",
    ],
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    permissions: ["microphone"],
  }));

  const resp = await page.goto(o.base + "/call", { timeout: o.stepTimeoutMs });
  check(resp && resp.ok(), `GET /call answered ${resp && resp.status()}`);
  check((await page.locator("html").getAttribute("lang")) === "zh-CN", "the page is not marked zh-CN");
  check((await page.locator("#call").textContent()).includes("拨打举报电话"), "no 拨打举报电话 button");
  await shot("caller-page");

  await page.tap("#call");
  // What the page hears, from the first remote track on.
  await page.waitForFunction(() => window.hotline && window.hotline.remote, null, { timeout: o.stepTimeoutMs })
    .catch(() => { throw new Fail("no remote audio track"); });
  await page.evaluate(() => {
    window.__heard = [];
    const ctx = new AudioContext();
    const src = ctx.createMediaStreamSource(window.hotline.remote);
    const node = ctx.createScriptProcessor(2048, 1, 1);
    const per = Math.round(ctx.sampleRate / 100);
    let acc = 0, k = 0;
    node.onaudioprocess = (e) => {
      for (const x of e.inputBuffer.getChannelData(0)) {
        acc += x * x;
        if (++k === per) { window.__heard.push(Math.sqrt(acc / k)); acc = 0; k = 0; }
      }
    };
    src.connect(node);
    node.connect(ctx.destination);
    window.__capture = ctx;
  });
  await state("connected", "after 拨打举报电话");
  await shot("connected");
  // The greeting and the menu, heard.
  await page.waitForTimeout(o.listenMs);
  await page.tap(`#keypad button:text-is("${o.key}")`);
  await shot("keyed");
  await page.waitForFunction(() => window.hotline.ticket, null, { timeout: o.stepTimeoutMs })
    .catch(() => { throw new Fail("no ticket number on the page"); });
  const ticket = await page.evaluate(() => window.hotline.ticket);
  check((await page.locator("#ticket").textContent()).includes(ticket), "the ticket number is not shown");
  console.log(`TICKET ${ticket}`);
  // A few more seconds of the caller speaking (the fake microphone).
  await page.waitForTimeout(3000);
  await page.tap("#hangup");
  await state("ended", "after 挂断");
  await shot("ended");
  const heard = await page.evaluate(() => window.__heard.map((v) => v.toFixed(5)).join(","));
  console.log(`HEARD ${heard}`);
  console.log("DONE");
  await context.close();
  await rm(profile, { recursive: true, force: true });
  process.exit(0);
} catch (e) {
  console.error(`FAIL: ${e instanceof Fail ? e.message : e.stack || e}`);
  if (page) await page.screenshot({ path: path.join(o.shots, "failure.png"), fullPage: true }).catch(() => {});
  if (context) await context.close().catch(() => {});
  await rm(profile, { recursive: true, force: true });
  process.exit(1);
}
