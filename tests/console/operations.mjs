// The console's day-to-day operations in Debian's headless Chromium, against
// a running appliance with two channels: a pass-through one and a software
// ladder (360p, 240p). Prints one JSON line per request to the Rust test
// (tests/tests/e2e/console_operations.rs), which publishes with the real ffmpeg
// program and trips the encoder: `{"publish": <channel>}`,
// `{"unpublish": <channel>}`, `{"inject_fault": <channel>}`; the last line is
// the report.
//
//   node operations.mjs <appliance url> <admin password> <screenshot dir> <pass-through channel> <ladder channel>
//
// Checked here and reported: the live input figures and encoder placement
// on the dashboard as the API gives them; the copy buttons (clipboard read
// back) against the API's URLs and key; an API token created on the system
// page, shown once, working over HTTP, then revoked (401); a webhook created
// and deleted; the rendition switcher on the ladder changing hls.js's level
// and the picture's height; the ladder's move after an encoder failure shown
// as an alert.
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { watchPage } from "./page-watch.mjs";
import { mkdirSync } from "node:fs";

const [base, password, shots, PASS, LADDER] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const report = { steps: [], console_errors: [], csp_violations: [] };
const step = (name) => { report.steps.push(name); console.error(`step: ${name} (${((Date.now() - began) / 1000).toFixed(1)} s)`); };
const tell = (message) => console.log(JSON.stringify(message));
const began = Date.now();

const browser = await chromium.launch(chromiumOptions);
try {
  // The copy buttons write the clipboard; the test reads it back.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, permissions: ["clipboard-read", "clipboard-write"] });
  const page = await context.newPage();
  const shot = watchPage(page, report, shots);
  const location_hash_channel = (hash) => hash.replace(/^#\/channels\//, "").split("/")[0];
  const apiGet = (path) => page.evaluate(async (p) => (await fetch(`/api/v1${p}`)).json(), path);
  const card = (channel, field) => `[data-channel="${channel}"] [data-field=${field}]`;
  const text = async (selector) => (await page.textContent(selector)).trim();

  tell({ publish: PASS });
  await page.goto(`${base}/console/`);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("#channels", { state: "attached" });
  step("signed in");

  // (a) The dashboard shows the live input as measured and the encoder placement.
  await page.waitForFunction(([sel, enc]) => {
    const input = document.querySelector(sel)?.textContent || "";
    return /\d fps/.test(input) && /bit\/s/.test(input) && document.querySelector(enc)?.textContent === "passthrough";
  }, [card(PASS, "input"), card(PASS, "encoder")], { timeout: 45000 });
  // Once the rates cover the whole window (5 s), compare with the API.
  await page.waitForFunction(async (name) => {
    const c = await (await fetch(`/api/v1/channels/${name}`)).json();
    return c.live?.input.window_seconds === 5;
  }, PASS, { timeout: 30000, polling: 500 });
  await page.waitForTimeout(2500); // the next dashboard poll
  report.dashboard = {
    input: await text(card(PASS, "input")), audio: await text(card(PASS, "audio")),
    encoder: await text(card(PASS, "encoder")), dropped: await text(card(PASS, "dropped")),
  };
  const live = (await apiGet(`/channels/${PASS}`)).live;
  report.api_live = { width: live.input.video.width, height: live.input.video.height, fps: live.input.video.fps,
    bitrate_bps: live.input.bitrate_bps, encoder: live.encoder.mode, audio: live.input.audio };
  await shot("dashboard-live");
  step("live figures on the dashboard");

  // (d) The copy buttons copy what the API says; the key only after reveal.
  await page.click(`[data-channel="${PASS}"] h3 a`);
  await page.waitForSelector("#stream-key");
  await page.bringToFront();
  const channel = await apiGet(`/channels/${PASS}`);
  report.masked = { key_text: await text("#stream-key"), rtmp_text: await text("#rtmp-url") };
  report.masked.shows_key = report.masked.key_text.includes(channel.stream_key) || report.masked.rtmp_text.includes(channel.stream_key);
  const copied = async (selector) => {
    await page.evaluate(() => navigator.clipboard.writeText(""));
    await page.click(selector);
    await page.waitForFunction(async () => (await navigator.clipboard.readText()) !== "", null, { polling: 100 });
    return page.evaluate(() => navigator.clipboard.readText());
  };
  const rtmp = await copied("#rtmp-url-copy");
  await page.click("#reveal");
  await page.waitForSelector("#stream-key[data-key]");
  const key = await copied("#stream-key-copy");
  const playback = await copied("#playback-url-copy");
  const embed = await copied("#embed-copy");
  report.copies = {
    rtmp: [rtmp, channel.publish_url], key: [key, channel.stream_key], playback: [playback, channel.playback_url],
    embed,
    revealed_key_text: await text("#stream-key"),
  };
  step("copy buttons");

  // The channel page: its live figures, the preview playing, viewers counted from its requests.
  await page.waitForFunction(() => document.getElementById("preview")?.currentTime > 0.5, null, { timeout: 30000 });
  await page.waitForFunction(() => Number(document.querySelector("#live [data-field=viewers]")?.textContent) >= 1, null, { timeout: 15000 });
  await page.waitForFunction(() => /s$/.test(document.getElementById("latency").textContent), null, { timeout: 15000 }).catch(() => {});
  report.channel_page = {
    video: await text("#live [data-field=video]"), fps: await text("#live [data-field=fps]"),
    bitrate: await text("#live [data-field=bitrate]"), audio: await text("#live [data-field=audio]"),
    encoder: await text("#live [data-field=encoder]"), viewers: Number(await text("#live [data-field=viewers]")),
    latency: await text("#latency"),
  };
  await shot("channel-live");
  step("channel page live figures");

  // A restream destination added on the channel page: listed with its key masked, then removed.
  const restreamUrl = "rtmp://127.0.0.1:9/live2";
  const restreamKey = "console-secret-key-42";
  await page.fill("#rs-url", restreamUrl);
  await page.fill("#rs-key", restreamKey);
  await page.click("#restream-form button[type=submit]");
  await page.waitForFunction((u) => [...document.querySelectorAll("#restreams tr")].some((r) => r.cells[0]?.textContent.startsWith(u)), restreamUrl);
  const channelName = decodeURIComponent(location_hash_channel(await page.evaluate(() => location.hash)));
  const destinations = await apiGet(`/channels/${encodeURIComponent(channelName)}/restreams`);
  report.restream = {
    row: await page.evaluate(() => document.querySelector("#restreams tr")?.cells[0]?.textContent ?? null),
    page_shows_key: (await page.content()).includes(restreamKey),
    api: destinations.map((d) => ({ url: d.url, key_set: d.key_set, rendition: d.rendition, has_key_field: "key" in d })),
  };
  await shot("channel-restream");
  await page.click(`[aria-label="Remove restream to ${restreamUrl}"]`);
  await page.waitForSelector("#confirm[open]");
  await page.click("#confirm-ok");
  await page.waitForFunction(() => document.querySelector("#restreams tr td.muted")?.textContent === "No restream destinations.");
  report.restream.api_after_delete = (await apiGet(`/channels/${encodeURIComponent(channelName)}/restreams`)).length;
  step("restream destination added and removed");

  // (b) An API token made on the system page: shown once, listed, working, then revoked.
  await page.click("a[data-nav=system]");
  await page.waitForSelector("#token-form");
  await page.fill("#t-name", "ci-token");
  await page.selectOption("#t-role", "viewer");
  await page.click("#token-form button[type=submit]");
  await page.waitForSelector("#new-token-value");
  const token = await text("#new-token-value");
  await page.waitForFunction(() => [...document.querySelectorAll("#tokens tr")].some((r) => r.cells[0]?.textContent === "ci-token"));
  const status = (t, method = "GET") => page.evaluate(async ([t, method]) => (await fetch("/api/v1/channels", {
    method, credentials: "omit", headers: { Authorization: `Bearer ${t}`, "Content-Type": "application/json" },
    body: method === "GET" ? undefined : JSON.stringify({ name: "read-scope-probe" }),
  })).status, [t, method]);
  report.token = { text: token, listed: true, get_status: await status(token), post_status: await status(token, "POST") };
  const listed = await apiGet("/tokens?limit=500");
  report.token.list_has_secret = JSON.stringify(listed).includes(token.split(".").pop());
  await shot("system-token-created");
  await page.click('[aria-label="Revoke token ci-token"]');
  await page.waitForSelector("#confirm[open]");
  await page.click("#confirm-ok");
  await page.waitForFunction(() => ![...document.querySelectorAll("#tokens tr")].some((r) => r.cells[0]?.textContent === "ci-token"));
  report.token.status_after_revoke = await status(token);
  // Shown once: back on the page, it is gone.
  await page.click("a[data-nav=dashboard]");
  await page.click("a[data-nav=system]");
  await page.waitForSelector("#token-form");
  report.token.shown_again = (await page.$("#new-token-value")) !== null;
  step("token created, used and revoked");

  // (c) A webhook made and deleted on the system page.
  const hookUrl = "http://127.0.0.1:9/ci-hook";
  await page.fill("#w-url", hookUrl);
  await page.check("#w-ev-session-encoder_moved");
  await page.check("#w-ev-session-error");
  await page.click("#webhook-form button[type=submit]");
  await page.waitForSelector("#new-webhook-secret");
  report.webhook = { secret_length: (await text("#new-webhook-secret")).length };
  await page.waitForFunction((u) => [...document.querySelectorAll("#webhooks tr")].some((r) => r.cells[0]?.textContent === u), hookUrl);
  report.webhook.api_events = (await apiGet("/webhooks?limit=500")).items.find((w) => w.url === hookUrl)?.events ?? null;
  await shot("system-webhook-created");
  await page.click(`[aria-label="Remove the webhook to ${hookUrl}"]`);
  await page.waitForSelector("#confirm[open]");
  await page.click("#confirm-ok");
  await page.waitForFunction((u) => ![...document.querySelectorAll("#webhooks tr")].some((r) => r.cells[0]?.textContent === u), hookUrl);
  report.webhook.api_after_delete = (await apiGet("/webhooks?limit=500")).items.filter((w) => w.url === hookUrl).length;
  step("webhook created and deleted");

  // (e) The ladder: the dashboard shows its placement; the channel page's rendition switcher drives hls.js.
  tell({ unpublish: PASS });
  tell({ publish: LADDER });
  await page.click("a[data-nav=dashboard]");
  await page.waitForFunction((sel) => /^software on cpu: /.test(document.querySelector(sel)?.textContent || ""), card(LADDER, "encoder"), { timeout: 45000 });
  report.ladder_dashboard = { encoder: await text(card(LADDER, "encoder")), input: await text(card(LADDER, "input")) };
  await shot("dashboard-ladder");
  await page.click(`[data-channel="${LADDER}"] h3 a`);
  await page.waitForFunction(() => document.querySelectorAll("#rendition option").length >= 3 && document.getElementById("preview").currentTime > 0.3, null, { timeout: 45000 });
  const options = await page.$$eval("#rendition option", (os) => os.map((o) => ({ value: o.value, text: o.textContent })));
  report.renditions = options.map((o) => o.text);
  report.switches = [];
  for (const height of [240, 360]) {
    const option = options.find((o) => o.text.startsWith(`${height}p`));
    if (!option) throw new Error(`no ${height}p option in ${JSON.stringify(options)}`);
    await page.selectOption("#rendition", option.value);
    await page.waitForFunction(([level, h]) => window.consolePlayer?.currentLevel === level && document.getElementById("preview").videoHeight === h,
      [Number(option.value), height], { timeout: 30000, polling: 100 });
    report.switches.push({ chosen: option.text, current_level: await page.evaluate(() => window.consolePlayer.currentLevel),
      video_height: await page.evaluate(() => document.getElementById("preview").videoHeight), shown: await text("#rendition-now") });
    await shot(`channel-ladder-${height}p`);
  }
  step("rendition switcher");

  // An encoder failure moves the ladder: an alert on the channel page, the dashboard and the system page.
  tell({ inject_fault: LADDER });
  await page.waitForSelector("#move-alert:not([hidden])", { timeout: 20000 });
  report.move = { channel_alert: await text("#move-alert"), channel_encoder: await text("#live [data-field=encoder]") };
  await shot("channel-moved");
  await page.click("a[data-nav=dashboard]");
  await page.waitForFunction((c) => /moved 1×/.test(document.querySelector(`[data-channel="${c}"] .badge.warn`)?.textContent || ""), LADDER);
  report.move.dashboard_badge = await text(`[data-channel="${LADDER}"] .badge.warn`);
  await page.click("a[data-nav=system]");
  await page.waitForSelector('#events tr[data-event="session.encoder_moved"]');
  const row = '#events tr[data-event="session.encoder_moved"]';
  report.move.system_event = { alert: (await page.$(`${row}.alert-row .badge.warn`)) !== null, details: await text(`${row} td:last-child`),
    count: await text("#alert-count") };
  await shot("system-alert");
  step("encoder move shown");
} catch (e) {
  report.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
report.seconds = (Date.now() - began) / 1000;
console.log(JSON.stringify(report));
