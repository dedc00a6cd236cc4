// Rewinds a live channel in its DVR window with the appliance's vendored
// hls.js (low-latency mode, with the part guard), and prints one JSON line:
// the seekable range, where the seek landed and how far it played there,
// which segments were loaded back there (and which responses came from the
// recording, where the origin redirects what left memory), the latency after returning to
// the live edge, stalls, and every player, HTTP and console error.
//
//   node dvr.mjs <origin url> <channel> <seconds back>
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { openVideoPage } from "./video-page.mjs";

const [origin, channel, backArg] = process.argv.slice(2);
const back = Number(backArg || 60);

const browser = await chromium.launch(chromiumOptions);
try {
  // Segments that left memory are redirected into the recording: the responses say where they came from.
  const from_recording = [];
  const onResponse = (r) => {
    if (r.status() < 400 && r.url().includes("/recordings/") && from_recording.length < 20) from_recording.push(r.url());
  };
  const { page, http_errors, console_errors } = await openVideoPage(browser, origin, { partGuard: true, onResponse });
  const report = await page.evaluate(async ([url, back]) => {
    const video = document.getElementById("video");
    const errors = [];
    const loaded = [];
    const hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) errors.push(`hls.js ${d.details}${d.error ? `: ${d.error.message}` : ""}${d.url ? ` (${d.url})` : ""}`); });
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => { loaded.push({ url: (d.part || d.frag).url, start: (d.part || d.frag).start }); });
    hls.loadSource(url);
    hls.attachMedia(video);
    guardLowLatencyParts(hls, video);
    video.play().catch(() => {});
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    // Polls `test` every 100 ms up to `seconds`; true once it holds.
    const until = async (test, seconds) => {
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        if (test()) return true;
        await sleep(100);
      }
      return false;
    };
    const latency = () => (hls.playingDate ? (Date.now() - hls.playingDate.getTime()) / 1000 : null);
    let stalls = 0;
    video.addEventListener("waiting", () => { if (video.currentTime > 0) stalls++; });
    const started = await until(() => video.currentTime > 0 && !video.paused, 30);
    await sleep(2000);
    const live = { current_time: video.currentTime, latency: latency() };
    const seekable = video.seekable.length ? [video.seekable.start(0), video.seekable.end(video.seekable.length - 1)] : null;
    // Back into the window, and play there a few seconds.
    const target = Math.max(seekable ? seekable[0] + 1 : 0, video.currentTime - back);
    const before = loaded.length;
    video.currentTime = target;
    const played_back = await until(() => video.currentTime > target + 3, 30);
    const rewound = { target, current_time: video.currentTime, latency: latency(), urls: loaded.slice(before).map((l) => l.url).filter((u) => !u.includes("part")).slice(0, 4) };
    // Return to the live edge.
    video.currentTime = hls.liveSyncPosition;
    const returned = await until(() => latency() !== null && latency() < 10, 30);
    await sleep(3000);
    const back_live = { current_time: video.currentTime, latency: latency(), playing: !video.paused };
    return { started, seekable, live, played_back, rewound, returned, back_live, stalls, fatal_errors: errors };
  }, [`${origin}/hls/${encodeURIComponent(channel)}/dvr.m3u8`, back]);
  console.log(JSON.stringify({ ...report, from_recording, http_errors, console_errors }));
} finally {
  await browser.close();
}
