// Plays one channel with independent players at once, each in its own
// Chromium context (its own HTTP cache, like separate viewers), and prints
// one JSON line with a report per player: playback progress, stalls, player
// errors, every HTTP error the browser saw, and latency.
//
//   node play.mjs <origin url> <channel> <seconds> <player>[,<player>...] [query]
//
// `query` is added to the multivariant playlist's URL (a private channel's
// `token=...`; the origin carries it on into every URI it hands out).
//
// Players: `hlsjs` (the appliance's vendored hls.js, low-latency mode) and
// `shaka` (Shaka Player from this folder's node_modules, low-latency mode:
// it requests the preload-hinted parts). Latency is measured the same way
// for both: the wall clock minus the EXT-X-PROGRAM-DATE-TIME of the frame on
// screen (the appliance stamps it at ingest, on this machine's clock); each
// player's own estimate is reported beside it.
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import { chromiumOptions } from "../chromium-options.mjs";

const [origin, channel, secondsArg, playersArg, query] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const players = (playersArg || "hlsjs").split(",");
const shakaPath = fileURLToPath(new URL("node_modules/shaka-player/dist/shaka-player.compiled.js", import.meta.url));

const page_html = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><video id="video" muted autoplay playsinline></video>`;

// Starts `kind` in `page` on the channel's multivariant playlist; resolves once the page has a `window.viewer`.
async function start(page, kind) {
  // A page on the appliance's origin, so requests are same-origin as on the watch page.
  await page.goto(`${origin}/healthz`);
  await page.setContent(page_html);
  if (kind === "shaka") await page.addScriptTag({ path: shakaPath });
  else {
    // hls.js as the appliance serves it, with the part guard its README recommends (webui/hls-part-guard.js).
    await page.addScriptTag({ url: `${origin}/assets/hls.min.js` });
    await page.addScriptTag({ url: `${origin}/assets/hls-part-guard.js` });
  }
  await page.evaluate(async ([kind, url]) => {
    const video = document.getElementById("video");
    // What the player did lately, kept to explain a stall (hls.js: loads with their times, non-fatal errors).
    const viewer = { errors: [], levels: () => [], recent: [] };
    const note = (what) => { viewer.recent.push(`${(performance.now() / 1000).toFixed(2)} ${what}`); if (viewer.recent.length > 12) viewer.recent.shift(); };
    if (kind === "shaka") {
      shaka.polyfill.installAll();
      const player = new shaka.Player();
      await player.attach(video);
      // Sequence mode (appending each part after the previous one) is how
      // Shaka Player 5.2 plays this origin's LL-HLS; its default segments mode
      // derives each part's timestampOffset from the playlist, adds 1 ms to a
      // negative one (an Edge workaround), finds the offset "changed" on the
      // next part, aborts the SourceBuffer and MSE drops that part's frames up
      // to the next keyframe: a gap jump at every segment. Placing parts by
      // their media timestamps instead (ignoreManifestTimestampsInSegmentsMode)
      // plays a fresh stream but not one joined after its window has slid: the
      // seek range stays at the playlist's timeline while the media is buffered
      // at its own. The appliance README says so for integrators.
      player.configure({
        streaming: { lowLatencyMode: true },
        manifest: { hls: { sequenceMode: true } },
      });
      player.addEventListener("error", (e) => viewer.errors.push(`shaka ${e.detail.code}`));
      await player.load(url);
      viewer.playingDate = () => player.getPlayheadTimeAsDate();
      viewer.ownLatency = () => player.getStats().liveLatency;
      viewer.levels = () => player.getVariantTracks().map((t) => `${t.width}x${t.height}@${t.bandwidth}`);
      viewer.stats = () => {
        const s = player.getStats();
        return { stalls_detected: s.stallsDetected, gaps_jumped: s.gapsJumped, buffering_seconds: s.bufferingTime };
      };
      window.shakaPlayer = player;
    } else {
      const hls = new Hls({ lowLatencyMode: true });
      hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) viewer.errors.push(`hls.js ${d.details}`); else note(`error ${d.details}`); });
      const took = (stats) => stats && stats.loading ? Math.round(stats.loading.end - stats.loading.start) : null;
      hls.on(Hls.Events.FRAG_LOADED, (_, d) => note(`loaded ${(d.part || d.frag).url.split("/").pop()} in ${took((d.part || d.frag).stats)} ms`));
      hls.on(Hls.Events.LEVEL_LOADED, (_, d) => note(`playlist ${d.details.lastPartSn}.${d.details.lastPartIndex} in ${took(d.stats)} ms`));
      hls.loadSource(url);
      hls.attachMedia(video);
      viewer.playingDate = () => hls.playingDate;
      viewer.ownLatency = () => hls.latency;
      viewer.levels = () => hls.levels.map((l) => `${l.width}x${l.height}@${l.bitrate}`);
      window.hlsPlayer = hls;
      const guard = guardLowLatencyParts(hls, video);
      viewer.stats = () => ({ part_guard_restarts: guard.restarts });
    }
    video.play().catch(() => {});
    window.viewer = viewer;
  }, [kind, `${origin}/hls/${encodeURIComponent(channel)}/index.m3u8${query ? `?${query}` : ""}`]);
  await page.waitForFunction(() => document.getElementById("video").currentTime > 0, null, { timeout: 30000 });
}

// Watches `page`'s viewer for `seconds`.
async function watch(page, seconds) {
  return page.evaluate(async (seconds) => {
    const video = document.getElementById("video");
    const viewer = window.viewer;
    let stalls = 0;
    const stallsAt = [];
    video.addEventListener("waiting", () => {
      stalls++;
      const b = video.buffered;
      let ahead = 0;
      for (let i = 0; i < b.length; i++) if (b.start(i) <= video.currentTime && video.currentTime <= b.end(i)) ahead = b.end(i) - video.currentTime;
      if (stallsAt.length < 10) stallsAt.push({ at: +video.currentTime.toFixed(3), buffer_ahead: +ahead.toFixed(3), ranges: b.length, recent: [...viewer.recent] });
    });
    const latencies = [];
    const own = [];
    const start = video.currentTime;
    const began = performance.now();
    let timerLateMax = 0;
    while (performance.now() - began < seconds * 1000) {
      const asked = performance.now();
      await new Promise((r) => setTimeout(r, 250));
      timerLateMax = Math.max(timerLateMax, performance.now() - asked - 250);
      const date = viewer.playingDate();
      if (date && !video.paused) latencies.push((Date.now() - date.getTime()) / 1000);
      const o = viewer.ownLatency();
      if (Number.isFinite(o) && o > 0) own.push(o);
    }
    const q = (values, p) => {
      const v = [...values].sort((a, b) => a - b);
      return v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : null;
    };
    return {
      played_seconds: video.currentTime - start,
      wall_seconds: (performance.now() - began) / 1000,
      stalls,
      player_errors: viewer.errors,
      latency_p50: q(latencies, 0.5), latency_p95: q(latencies, 0.95), latency_max: q(latencies, 1),
      own_latency_p50: q(own, 0.5),
      stalls_at: stallsAt,
      timer_late_max_ms: Math.round(timerLateMax),
      player_stats: viewer.stats ? viewer.stats() : null,
      levels: viewer.levels(),
      video_size: [video.videoWidth, video.videoHeight],
    };
  }, seconds);
}

const browser = await chromium.launch(chromiumOptions);
try {
  const viewers = await Promise.all(players.map(async (kind) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Chromium asks the origin for a favicon; the appliance has none to give.
    await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
    const http_errors = [];
    const console_errors = [];
    page.on("response", (r) => { if (r.status() >= 400) http_errors.push(`${r.status()} ${r.url()}`); });
    page.on("requestfailed", (r) => {
      // Players abort requests they no longer need; anything else is a failure.
      const why = r.failure()?.errorText ?? "";
      if (!why.includes("ERR_ABORTED")) http_errors.push(`${why} ${r.url()}`);
    });
    page.on("console", (m) => { if (m.type() === "error") console_errors.push(m.text()); });
    await start(page, kind);
    return { kind, page, http_errors, console_errors };
  }));
  const reports = await Promise.all(viewers.map(async ({ kind, page, http_errors, console_errors }) => {
    const report = await watch(page, seconds);
    return { player: kind, ...report, http_errors, console_errors };
  }));
  console.log(JSON.stringify({ players: reports }));
} finally {
  await browser.close();
}
