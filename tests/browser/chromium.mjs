// Debian's headless Chromium through playwright-core: the one way every
// script of tests/browser starts it. Nothing is reachable but the gateway
// (no other name resolves), page errors and requests to any other origin are
// collected for the script to check, and Chinese locale and Qingdao's time
// zone are the defaults.
import { chromium } from "playwright-core";

// Without the background-networking flags Chromium tries Google's hosts
// at every start (refused on this closed network).
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

// Starts Chromium on `profile`: `origin` is the only host it may reach,
// `args` more command-line flags, `init` a script run in every page before
// its own, the rest playwright's context options (viewport, isMobile, ...).
// Returns the context and its first page.
export async function launch({
  executablePath, profile, origin, stepTimeoutMs, pageErrors, foreign, args = [], init, ...options
}) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [...FLAGS, `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${new URL(origin).hostname}`, ...args],
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
    ...options,
  });
  context.setDefaultTimeout(stepTimeoutMs);
  if (init) await context.addInitScript(init);
  const page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  context.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith("blob:") && !u.startsWith("data:") && new URL(u).origin !== origin) foreign.push(u);
  });
  return { context, page };
}
