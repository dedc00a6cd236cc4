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

const [url, secondsArg, screenshot, mode] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const browser = await chromium.launch(chromiumOptions);
try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => window.hlsPlayer && document.getElementById("video").currentTime > 0, null, { timeout: 20000 });
  console.log(JSON.stringify({ playing: true }));
  const result = await page.evaluate(async ([seconds, switchLevels]) => {
    const video = document.getElementById("video");
    const hls = window.hlsPlayer;
    let stalls = 0;
    let fatal = [];
    video.addEventListener("waiting", () => stalls++);
    hls.on("hlsError", (_, d) => { if (d.fatal) fatal.push(d.details); });
    const switched = [];
    hls.on("hlsLevelSwitched", (_, d) => switched.push(d.level));
    let nextSwitch = performance.now() + 2000;
    const latencies = [];
    const start = video.currentTime;
    const began = performance.now();
    while (performance.now() - began < seconds * 1000) {
      await new Promise((r) => setTimeout(r, 250));
      if (Number.isFinite(hls.latency) && hls.latency > 0) latencies.push(hls.latency);
      if (switchLevels && hls.levels.length > 1 && performance.now() >= nextSwitch) {
        nextSwitch += 2000;
        hls.nextLevel = (Math.max(hls.currentLevel, 0) + 1) % hls.levels.length;
      }
    }
    latencies.sort((a, b) => a - b);
    const q = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null;
    return {
      played_seconds: video.currentTime - start,
      wall_seconds: (performance.now() - began) / 1000,
      stalls,
      fatal_errors: fatal,
      latency_p50: q(0.5), latency_p95: q(0.95), latency_max: latencies.at(-1) ?? null,
      target_latency: hls.targetLatency,
      low_latency_mode: hls.lowLatencyMode,
      levels: hls.levels.map((l) => `${l.width}x${l.height}@${l.bitrate}`),
      video_size: [video.videoWidth, video.videoHeight],
      levels_switched: switched,
    };
  }, [seconds, mode === "switch-levels"]);
  result.console_errors = consoleErrors;
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
