// The viewer's watch page in Debian's headless Chromium: opens
// /watch/<channel> as written and in its embed form (?embed=1),
// plays for a while and prints one JSON line: the page's mode and target
// latency, the latency it shows, the playback-rate range it used, the
// quality and captions menus, and the player report of measure.mjs.
//
//   node watch.mjs <origin url> <channel> <seconds> [screenshot.png]
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { openPlaying, watchHlsJs } from "./measure.mjs";

const [origin, channel, secondsArg, screenshot] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const url = `${origin}/watch/${encodeURIComponent(channel)}`;
const browser = await chromium.launch(chromiumOptions);
try {
  const context = await browser.newContext();
  const consoleErrors = [];
  const httpErrors = [];
  context.on("response", (r) => { if (r.status() >= 400) httpErrors.push(`${r.status()} ${r.url()}`); });
  const page = await openPlaying(context, url, consoleErrors);
  const startedAt = await page.evaluate(() => ({ latency: window.hlsPlayer.latency, target: window.hlsPlayer.targetLatency }));
  const report = await watchHlsJs(page, seconds);
  Object.assign(report, await page.evaluate(() => ({
    page: window.watch,
    shown_latency: document.getElementById("latency").textContent,
    state: document.getElementById("state").textContent,
    quality_menu: document.getElementById("quality-label").hidden ? null
      : [...document.getElementById("quality").options].map((o) => o.textContent),
    captions_menu: !document.getElementById("captions-label").hidden,
    title_shown: getComputedStyle(document.getElementById("title")).display !== "none",
  })));
  report.started_at = startedAt;
  if (screenshot) await page.screenshot({ path: screenshot });

  // The embed form (what the console's iframe snippet loads): plays, without the title.
  const embedded = await context.newPage();
  await embedded.goto(`${url}?embed=1`);
  await embedded.waitForFunction(() => document.getElementById("video").currentTime > 0.5, null, { timeout: 30000 });
  report.embed = await embedded.evaluate(() => ({
    playing: document.getElementById("video").currentTime > 0,
    title_shown: getComputedStyle(document.getElementById("title")).display !== "none",
  }));
  report.console_errors = consoleErrors;
  report.http_errors = httpErrors;
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
}
