// The broadcaster's go-live page in Debian's headless Chromium with its fake
// camera (a moving 1280x720 test picture) and microphone (a beep): opens
// /golive/<channel>#key=<stream key>, goes live over WHIP, prints
// {"event":"live",...} once the peer connection is up, plays the channel in
// a second page (/watch/<channel>, hls.js) for <seconds> while it sends,
// then presses End and prints its report: what the browser says it sent
// (codec, size, frame rate, bitrate), the player's report (latency from
// EXT-X-PROGRAM-DATE-TIME, stalls), the WHIP requests, and errors.
//
//   node golive.mjs <origin url> <channel> <stream key> <seconds>
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { openPlaying, watchHlsJs } from "./measure.mjs";

const [origin, channel, key, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 15);
const browser = await chromium.launch({
  ...chromiumOptions,
  args: [...chromiumOptions.args, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
});
try {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const requests = [];
  page.on("response", (r) => { if (r.url().includes("/whip/")) requests.push(`${r.request().method()} ${r.status()}`); });
  await page.goto(`${origin}/golive/${encodeURIComponent(channel)}#key=${encodeURIComponent(key)}`);
  await page.waitForFunction(() => document.getElementById("preview").videoWidth > 0, null, { timeout: 15000 });
  const startedAt = Date.now();
  await page.click("#start");
  await page.waitForFunction(() => window.golive.state === "live" || window.golive.error, null, { timeout: 20000 });
  const live = await page.evaluate(() => window.golive);
  if (live.error) throw new Error(`going live failed: ${live.error}`);
  console.log(JSON.stringify({ event: "live", connect_ms: Date.now() - startedAt, resource: live.resource }));
  const viewerErrors = [];
  const viewer = await openPlaying(context, `${origin}/watch/${encodeURIComponent(channel)}`, viewerErrors);
  const player = await watchHlsJs(viewer, seconds);
  player.console_errors = viewerErrors;
  await viewer.close();
  const sending = await page.evaluate(() => window.golive.stats);
  await page.click("#stop");
  await page.waitForFunction(() => window.golive.state === "off-air", null, { timeout: 10000 });
  const after = await page.evaluate(() => window.golive);
  console.log(JSON.stringify({ event: "ended", sending, player, state: after.state, error: after.error, requests, console_errors: consoleErrors }));
} finally {
  await browser.close();
}
