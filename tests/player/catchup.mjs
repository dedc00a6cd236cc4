// Plays a catchup (an HLS VOD playlist) with the appliance's vendored hls.js
// from its first second to its end, and prints one JSON line: whether the
// video reached `ended`, its duration and final position, the renditions
// hls.js saw, stalls, and every player, HTTP and console error.
//
//   node catchup.mjs <origin url> <playlist path> <limit seconds>
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { openVideoPage } from "./video-page.mjs";

const [origin, path, limitArg] = process.argv.slice(2);
const limit = Number(limitArg || 60);

const browser = await chromium.launch(chromiumOptions);
try {
  const { page, http_errors, console_errors } = await openVideoPage(browser, origin);
  const report = await page.evaluate(async ([url, limit]) => {
    const video = document.getElementById("video");
    const errors = [];
    let stalls = 0;
    let playlistType = null;
    const hls = new Hls();
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) errors.push(`hls.js ${d.details}`); });
    hls.on(Hls.Events.LEVEL_LOADED, (_, d) => { playlistType = d.details.type; });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.addEventListener("waiting", () => { if (video.currentTime > 0) stalls++; });
    const firstFrameAt = performance.now();
    video.play().catch(() => {});
    const ended = await new Promise((resolve) => {
      video.addEventListener("ended", () => resolve(true));
      setTimeout(() => resolve(false), limit * 1000);
    });
    return {
      ended,
      duration: video.duration,
      current_time: video.currentTime,
      wall_seconds: (performance.now() - firstFrameAt) / 1000,
      playlist_type: playlistType,
      levels: hls.levels.map((l) => `${l.width}x${l.height}`),
      stalls,
      fatal_errors: errors,
      video_size: [video.videoWidth, video.videoHeight],
    };
  }, [`${origin}${path}`, limit]);
  console.log(JSON.stringify({ ...report, http_errors, console_errors }));
} finally {
  await browser.close();
}
