// A private channel in the console, in Debian's headless Chromium: the admin
// signs in, the dashboard's card and the channel page preview the live
// channel, each with a playback token the console asked for; every request
// under /hls/ but the thumbnail carries `token=`, none of them is refused, and the
// channel form shows the channel's playback. Prints one JSON report line.
//
//   node private.mjs <appliance url> <admin password> <channel> <screenshot dir>
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { watchPage } from "./page-watch.mjs";
import { mkdirSync } from "node:fs";

const [base, password, channel, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const report = { steps: [], console_errors: [], csp_violations: [], http_errors: [], media_without_token: [], media_with_token: 0 };
const step = (name) => { report.steps.push(name); console.error(`step: ${name}`); };

const browser = await chromium.launch(chromiumOptions);
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  const shot = watchPage(page, report, shots);
  // Refusals of playlists and media (the thumbnail is 404 until the first picture is made).
  page.on("response", (r) => {
    const path = new URL(r.url()).pathname;
    if (r.status() >= 400 && path.startsWith("/hls/") && !path.endsWith("/thumb.jpg")) report.http_errors.push(`${r.status()} ${r.url()}`);
  });
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (!url.pathname.startsWith("/hls/") || url.pathname.endsWith("/thumb.jpg")) return;
    if (url.searchParams.has("token")) report.media_with_token++;
    else report.media_without_token.push(url.pathname);
  });
  await page.goto(`${base}/console/`);
  await page.waitForSelector("#password");
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("#channels", { state: "attached" });
  await page.waitForFunction((c) => document.querySelector(`[data-channel="${c}"] video`)?.currentTime > 0.5, channel);
  report.card_played = true;
  step("dashboard preview played");
  // The card's picture of a private channel is fetched with the preview's token.
  await page.waitForFunction((c) => {
    const still = document.querySelector(`[data-channel="${c}"] img.still`);
    return still && !still.hidden && still.complete && still.naturalWidth > 0;
  }, channel, { timeout: 30000 });
  report.card_thumbnail = await page.$eval(`[data-channel="${channel}"] img.still`, (i) => new URL(i.src).searchParams.has("token"));
  step("dashboard picture shown");
  await page.goto(`${base}/console/#/channels/${channel}`);
  await page.waitForFunction(() => document.getElementById("preview")?.currentTime > 1, null, { timeout: 30000 });
  report.preview_played = true;
  await shot("private-channel");
  step("channel page preview played");
  await page.goto(`${base}/console/#/channels/${channel}/edit`);
  await page.waitForFunction(() => document.getElementById("f-playback")?.value === "private");
  report.form_playback = await page.$eval("#f-playback", (s) => s.value);
  step("form shows private");
} catch (e) {
  report.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
