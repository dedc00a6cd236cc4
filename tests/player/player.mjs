// Plays an appliance channel with hls.js (low-latency mode) in Debian's
// headless Chromium for a while and prints one JSON line: playback progress,
// stalls, errors and the player latency measured from EXT-X-PROGRAM-DATE-TIME.
//
//   node player.mjs <page url> <seconds> [screenshot.png] [switch-levels]
//
// With `switch-levels` the player is asked to change level (`hls.nextLevel`)
// every two seconds, cycling through an ABR ladder; the report lists the levels
// hls.js switched to. A first line `{"playing":true}` is printed as soon as
// playback has begun, so a test can act on the stream while it is watched.
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { openPlaying, watchHlsJs } from "./measure.mjs";

const [url, secondsArg, screenshot, mode] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const browser = await chromium.launch(chromiumOptions);
try {
  const consoleErrors = [];
  const page = await openPlaying(browser, url, consoleErrors);
  console.log(JSON.stringify({ playing: true }));
  const result = await watchHlsJs(page, seconds, { switchLevels: mode === "switch-levels" });
  result.console_errors = consoleErrors;
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
