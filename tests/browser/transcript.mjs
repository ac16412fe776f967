// Opens one ticket on the officers' mobile page in Debian's headless
// Chromium (playwright-core) and prints what it shows of the transcript
// and the whereabouts (tests/it/transcribe.rs):
//
//   node tests/browser/transcript.mjs --base URL --member ID --pin PIN --ticket N
//
// stdout: `TRANSCRIPT <text>`, `WHEREABOUTS <text>`, `DONE`. A failure
// prints `FAIL: <what>` on stderr and exits 1. Chromium reaches only the
// gateway.

import { launch } from "./chromium.mjs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

const o = { chromium: process.env.CHROMIUM || "/usr/bin/chromium", timeout: 30_000 };
const a = process.argv.slice(2);
for (let i = 0; i + 1 < a.length; i += 2) o[a[i].replace(/^--/, "")] = a[i + 1];
for (const k of ["base", "member", "pin", "ticket"]) {
  if (!o[k]) { console.error(`FAIL: --${k} is missing`); process.exit(2); }
}

const profile = await mkdtemp(path.join(tmpdir(), "hotline-transcript-"));
let context;
try {
  let page;
  ({ context, page } = await launch({
    executablePath: o.chromium, profile, origin: new URL(o.base).origin, stepTimeoutMs: o.timeout, pageErrors: [], foreign: [],
    viewport: { width: 390, height: 844 },
  }));
  await page.goto(o.base + "/", { timeout: o.timeout });
  await page.fill("#m", o.member);
  await page.fill("#p", o.pin);
  await page.tap("#go").catch(() => page.click("#go"));
  await page.locator("#tab-active").waitFor({ timeout: o.timeout });
  // The ticket as a tap on its card would open it.
  await page.evaluate((n) => ticketView(n), o.ticket);
  const tr = page.locator("#transcript");
  await tr.waitFor({ timeout: o.timeout });
  console.log("TRANSCRIPT " + (await tr.innerText()).replace(/\s+/g, " ").trim());
  console.log("WHEREABOUTS " + (await page.locator("#whereabouts").innerText()).replace(/\s+/g, " ").trim());
  console.log("DONE");
} catch (e) {
  console.error("FAIL: " + (e && e.message ? e.message : e));
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  await rm(profile, { recursive: true, force: true });
}
