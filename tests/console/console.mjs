// Walks through the operator's console in Debian's headless Chromium as a new
// operator would, and prints one JSON line per milestone; the last line is
// the report. The Rust test (tests/tests/e2e/console.rs) publishes with the real
// ffmpeg program when it reads the `{"publish": <stream key>}` line.
//
//   node console.mjs <appliance url> <admin password> <screenshot dir>
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { watchPage } from "./page-watch.mjs";
import { mkdirSync } from "node:fs";

const [base, password, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const CHANNEL = "console-cam";
const report = { steps: [], console_errors: [], csp_violations: [] };
const step = (name, extra = {}) => { report.steps.push(name); Object.assign(report, extra); console.error(`step: ${name}`); };

const browser = await chromium.launch(chromiumOptions);
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const shot = watchPage(page, report, shots);

  // The bare address leads to the console's sign-in.
  await page.goto(`${base}/`);
  await page.waitForSelector("#password");
  report.landing_url = page.url();
  await shot("signin");

  // A wrong password is refused and sets no session.
  await page.fill("#password", "not-the-password");
  await page.click("button[type=submit]");
  await page.waitForFunction(() => document.getElementById("password-error")?.textContent.length > 0);
  report.wrong_password_message = await page.textContent("#password-error");
  report.wrong_password_cookie = (await context.cookies()).some((c) => c.name === "appliance_session");
  await shot("signin-refused");
  step("wrong password refused");

  // The right one signs in.
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("#channels", { state: "attached" });
  const cookie = (await context.cookies()).find((c) => c.name === "appliance_session");
  report.cookie = cookie ? { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path, expires: cookie.expires > 0 } : null;
  step("signed in");

  // The session reads the API; a change without the CSRF token is refused.
  report.csrf = await page.evaluate(async () => {
    const get = await fetch("/api/v1/channels");
    const post = await fetch("/api/v1/channels", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "csrf-probe" }) });
    const wrong = await fetch("/api/v1/channels", { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": "0".repeat(64) }, body: JSON.stringify({ name: "csrf-probe" }) });
    const list = await (await fetch("/api/v1/channels")).json();
    return { get: get.status, post_without_token: post.status, post_wrong_token: wrong.status, probe_created: list.items.some((c) => c.name === "csrf-probe") };
  });
  step("csrf checked");

  // Create a channel; the API's field error appears next to the field first.
  await page.click("a[data-nav=new]");
  await page.waitForSelector("#channel-form");
  await page.fill("#f-name", "Not A Name!");
  await page.click("#channel-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("f-name-error").textContent.length > 0);
  report.name_field_error = await page.textContent("#f-name-error");
  // A ladder rung the API refuses gets its error on that rung.
  await page.fill("#f-name", CHANNEL);
  await page.check("#f-ladder");
  await page.fill("#rung-0-height", "63");
  await page.click("#channel-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("rung-0-error").textContent.length > 0);
  report.rung_field_error = await page.textContent("#rung-0-error");
  report.rung_input_invalid = await page.getAttribute("#rung-0-height", "aria-invalid");
  await page.fill("#f-name", "Not A Name!");
  await page.click("#channel-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("f-name-error").textContent.length > 0);
  await shot("channel-form-errors");
  await page.check("#f-passthrough");
  await page.fill("#f-name", CHANNEL);
  await page.fill("#f-max", "3600");
  await page.check("#f-record");
  await page.fill("#f-dvr", "30");
  await page.click("#channel-form button[type=submit]");
  await page.waitForSelector("#stream-key");
  await page.click("#reveal");
  await page.waitForSelector("#stream-key[data-key]");
  const key = await page.getAttribute("#stream-key", "data-key");
  step("channel created");
  console.log(JSON.stringify({ publish: key }));

  // The dashboard shows it live without a reload.
  await page.click("a[data-nav=dashboard]");
  await page.waitForSelector(`[data-channel="${CHANNEL}"]`);
  await page.evaluate(() => { window.__noReload = true; });
  await page.waitForSelector(`[data-channel="${CHANNEL}"] [data-state="live"]`, { timeout: 45000 });
  report.dashboard_live_without_reload = await page.evaluate(() => window.__noReload === true);
  await page.waitForFunction((c) => document.querySelector(`[data-channel="${c}"] video`)?.currentTime > 0.5, CHANNEL);
  await page.waitForFunction((c) => document.querySelector(`[data-channel="${c}"] [data-field=input]`).textContent.includes("×"), CHANNEL);
  report.dashboard_input = await page.textContent(`[data-channel="${CHANNEL}"] [data-field=input]`);
  // The card's thumbnail (the appliance's latest picture of the channel) loads.
  await page.waitForFunction((c) => {
    const img = document.querySelector(`[data-channel="${c}"] img[data-field=thumbnail]`);
    return img && img.complete && img.naturalWidth > 0 && !img.hidden;
  }, CHANNEL, { timeout: 30000 });
  report.dashboard_thumbnail = await page.evaluate((c) => {
    const img = document.querySelector(`[data-channel="${c}"] img[data-field=thumbnail]`);
    return { width: img.naturalWidth, height: img.naturalHeight, src: img.getAttribute("src") };
  }, CHANNEL);
  await shot("dashboard");
  step("live on the dashboard");

  // The channel page plays the preview; the video advances.
  await page.click(`[data-channel="${CHANNEL}"] h3 a`);
  await page.waitForFunction(() => document.getElementById("preview")?.currentTime > 0.5, null, { timeout: 30000 });
  const t0 = await page.evaluate(() => document.getElementById("preview").currentTime);
  await page.waitForTimeout(3000);
  const t1 = await page.evaluate(() => document.getElementById("preview").currentTime);
  report.preview_advanced_seconds = t1 - t0;
  await page.waitForFunction(() => /s$/.test(document.getElementById("latency").textContent), null, { timeout: 15000 }).catch(() => {});
  report.latency_text = await page.textContent("#latency");
  report.low_latency_mode = await page.evaluate(() => window.consolePlayer?.lowLatencyMode ?? null);
  // The channel records with a DVR window: the preview plays the rewindable playlist.
  report.preview_url = await page.evaluate(() => window.consolePlayer?.url ?? null);
  report.dvr_setting = await page.textContent("[data-field=dvr]");
  await shot("channel");
  step("preview played");

  // Rotate the key (with confirmation).
  await page.click("#reveal");
  await page.waitForSelector("#stream-key[data-key]");
  const before = await page.getAttribute("#stream-key", "data-key");
  await page.click("#rotate");
  await page.waitForSelector("#confirm[open]");
  await shot("rotate-confirm");
  await page.click("#confirm-ok");
  await page.waitForFunction((k) => { const el = document.getElementById("stream-key"); return el.dataset.key && el.dataset.key !== k; }, before);
  report.key_rotated = (await page.getAttribute("#stream-key", "data-key")) !== before;
  step("key rotated");

  // Stop the channel: the session ends with its reason in the history.
  await page.click("#stop");
  await page.waitForSelector("#start");
  await page.waitForFunction(() => document.querySelector("tbody")?.textContent.includes("channel-stopped"), null, { timeout: 20000 });
  report.stopped = true;
  await shot("channel-stopped");
  step("channel stopped");

  // The session's recording: listed on the channel page, opened, played, scrubbed, downloaded, deleted.
  await page.waitForFunction(() => {
    const row = document.querySelector("#recordings tr[data-recording]");
    return row && /ready|interrupted/.test(row.textContent);
  }, null, { timeout: 30000 });
  await page.click("#recordings tr[data-recording] a");
  await page.waitForFunction(() => document.getElementById("catchup")?.currentTime > 1, null, { timeout: 30000 });
  report.recording_played_seconds = await page.evaluate(() => document.getElementById("catchup").currentTime);
  report.recording_state = await page.textContent("[data-field=state]");
  const scrub = await page.locator("#scrub").boundingBox();
  await page.mouse.move(scrub.x + scrub.width * 0.5, scrub.y + scrub.height / 2);
  await page.waitForSelector("#scrub-preview:not([hidden])", { timeout: 5000 }).catch(() => {});
  report.scrub_preview = await page.evaluate(() => {
    const p = document.getElementById("scrub-preview");
    return { hidden: p.hidden, sprite: p.dataset.sprite ?? null };
  });
  if (report.scrub_preview.sprite) {
    report.scrub_sprite_status = await page.evaluate(async (s) => (await fetch(s.split("#")[0])).status, report.scrub_preview.sprite);
  }
  const download = await page.getAttribute("#download", "href");
  report.download = await page.evaluate(async (href) => {
    const r = await fetch(href);
    const body = await r.arrayBuffer();
    return { href, status: r.status, type: r.headers.get("content-type"), bytes: body.byteLength };
  }, download);
  await shot("recording");
  await page.click("#delete-recording");
  await page.waitForSelector("#confirm[open]");
  await page.click("#confirm-ok");
  await page.waitForFunction((c) => location.hash === `#/channels/${c}`, CHANNEL);
  await page.waitForFunction(() => document.querySelector("#recordings")?.textContent.includes("No recordings"), null, { timeout: 15000 });
  report.recording_deleted = true;
  step("recording played and deleted");

  // The edit form and the system page.
  await page.goto(`${base}/console/#/channels/${CHANNEL}/edit`);
  await page.waitForFunction(() => document.getElementById("f-max")?.value === "3600");
  await shot("channel-edit");
  await page.click("a[data-nav=system]");
  await page.waitForSelector("#host dt");
  await page.waitForSelector("#channel-form", { state: "detached" });
  await shot("system");
  step("system page");

  // Tablet width: no page is wider than the screen.
  await page.setViewportSize({ width: 820, height: 1100 });
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  report.tablet_overflow = {};
  await page.click("a[data-nav=dashboard]");
  await page.waitForSelector(`[data-channel="${CHANNEL}"]`);
  report.tablet_overflow.dashboard = await overflow();
  await shot("dashboard-tablet");
  await page.click(`[data-channel="${CHANNEL}"] h3 a`);
  await page.waitForSelector("#conn-h");
  await page.waitForSelector("#start, #stop");
  report.tablet_overflow.channel = await overflow();
  await shot("channel-tablet");
  await page.click("a[data-nav=system]");
  await page.waitForSelector("#host dt");
  report.tablet_overflow.system = await overflow();
  await shot("system-tablet");

  // Keyboard only: Tab from the top reaches the channel's link with a
  // visible focus ring, and Enter opens the channel page.
  await page.click("a[data-nav=dashboard]");
  await page.waitForSelector(`[data-channel="${CHANNEL}"]`);
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  report.keyboard = { tabs: 0, reached: false };
  for (let i = 0; i < 40 && !report.keyboard.reached; i++) {
    await page.keyboard.press("Tab");
    report.keyboard.tabs = i + 1;
    report.keyboard.reached = await page.evaluate((name) => {
      const a = document.activeElement;
      return a?.tagName === "A" && a.textContent === name && !!a.closest("[data-channel]");
    }, CHANNEL);
  }
  report.keyboard.focus_ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  await page.keyboard.press("Enter");
  await page.waitForFunction((name) => location.hash === `#/channels/${encodeURIComponent(name)}`, CHANNEL);
  report.keyboard.opened = true;
  step("tablet width and keyboard");

  // Sign out: the cookie no longer opens the API.
  await page.click("#sign-out");
  await page.waitForSelector("#password");
  report.after_sign_out_status = await page.evaluate(async () => (await fetch("/api/v1/channels")).status);
  step("signed out");
} catch (e) {
  report.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
