// Watches one hls.js player (a page exposing `window.hlsPlayer` and a
// `<video id="video">`) for a while and returns what it did: playback
// progress, stalls, errors, and the latency hls.js measures from
// EXT-X-PROGRAM-DATE-TIME. With `switchLevels` the player is asked to change
// level every two seconds, cycling through an ABR ladder.
export async function watchHlsJs(page, seconds, { switchLevels = false } = {}) {
  return page.evaluate(async ([seconds, switchLevels]) => {
    const video = document.getElementById("video");
    const hls = window.hlsPlayer;
    let stalls = 0;
    const fatal = [];
    const httpErrors = [];
    // What the player did lately (loads with their request-to-loaded times,
    // non-fatal errors), kept to explain a stall: was the network late, or
    // was this page starved (its timers late)?
    const recent = [];
    const note = (what) => { recent.push(`${(performance.now() / 1000).toFixed(2)} ${what}`); if (recent.length > 12) recent.shift(); };
    const took = (stats) => stats && stats.loading ? Math.round(stats.loading.end - stats.loading.start) : null;
    hls.on("hlsFragLoaded", (_, d) => note(`loaded ${(d.part || d.frag).url.split("/").pop()} in ${took((d.part || d.frag).stats)} ms`));
    hls.on("hlsLevelLoaded", (_, d) => note(`playlist ${d.details.lastPartSn}.${d.details.lastPartIndex} in ${took(d.stats)} ms`));
    const stallsAt = [];
    let timerLateMax = 0;
    video.addEventListener("waiting", () => {
      stalls++;
      const b = video.buffered;
      const ranges = [];
      for (let i = 0; i < b.length; i++) ranges.push(`${b.start(i).toFixed(2)}-${b.end(i).toFixed(2)}`);
      if (stallsAt.length < 5) stallsAt.push({ at: +video.currentTime.toFixed(3), buffered: ranges.join(","), recent: [...recent] });
    });
    hls.on("hlsError", (_, d) => {
      if (!d.fatal) note(`error ${d.details}`);
      if (d.fatal) fatal.push(d.details);
      const code = d.response && d.response.code;
      if (code >= 400 || code === 0) httpErrors.push(`${code} ${d.details} ${d.url || (d.frag && d.frag.url) || ""}`);
    });
    const switched = [];
    hls.on("hlsLevelSwitched", (_, d) => switched.push(d.level));
    let nextSwitch = performance.now() + 2000;
    const latencies = [];
    const glass = [];
    let [rateMin, rateMax] = [video.playbackRate, video.playbackRate];
    const start = video.currentTime;
    const began = performance.now();
    while (performance.now() - began < seconds * 1000) {
      const asked = performance.now();
      await new Promise((r) => setTimeout(r, 250));
      timerLateMax = Math.max(timerLateMax, performance.now() - asked - 250);
      if (Number.isFinite(hls.latency) && hls.latency > 0) latencies.push(hls.latency);
      // The wall clock minus the program date-time on screen: ingest to display, on one machine's clock.
      if (hls.playingDate && !video.paused) glass.push((Date.now() - hls.playingDate.getTime()) / 1000);
      rateMin = Math.min(rateMin, video.playbackRate);
      rateMax = Math.max(rateMax, video.playbackRate);
      if (switchLevels && hls.levels.length > 1 && performance.now() >= nextSwitch) {
        nextSwitch += 2000;
        hls.nextLevel = (Math.max(hls.currentLevel, 0) + 1) % hls.levels.length;
      }
    }
    latencies.sort((a, b) => a - b);
    glass.sort((a, b) => a - b);
    const quantile = (v, p) => v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : null;
    const q = (p) => quantile(latencies, p);
    return {
      played_seconds: video.currentTime - start,
      wall_seconds: (performance.now() - began) / 1000,
      stalls,
      stalls_at: stallsAt,
      timer_late_max_ms: Math.round(timerLateMax),
      part_guard_restarts: window.partGuard ? window.partGuard.restarts : null,
      // The HTTP versions the page's requests used (h2 over HTTPS).
      protocols: [...new Set(performance.getEntriesByType("resource").map((e) => e.nextHopProtocol))],
      fatal_errors: fatal,
      http_errors: httpErrors,
      latency_p50: q(0.5), latency_p95: q(0.95), latency_max: latencies.at(-1) ?? null,
      ingest_to_display_p50: quantile(glass, 0.5), ingest_to_display_p95: quantile(glass, 0.95),
      target_latency: hls.targetLatency,
      low_latency_mode: hls.lowLatencyMode,
      levels: hls.levels.map((l) => `${l.width}x${l.height}@${l.bitrate}`),
      video_size: [video.videoWidth, video.videoHeight],
      levels_switched: switched,
      playback_rate: [rateMin, rateMax],
    };
  }, [seconds, switchLevels]);
}

// Opens `url` in `context` and waits until its hls.js player plays.
export async function openPlaying(context, url, consoleErrors) {
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => window.hlsPlayer && document.getElementById("video").currentTime > 0, null, { timeout: 20000 });
  return page;
}
