// Keeps hls.js (1.7.4, low-latency mode) loading parts across a race of its
// own: when the playlist update that completes a segment arrives while that
// segment's next-to-last part is still loading, hls.js's fragment tracker
// counts the whole segment as buffered and never asks for its last part.
// Playback stalls at the hole until the segment leaves the playlist's part
// list (three target durations), then jumps it. It happens when playlist
// updates come in bursts (a cache that collapses requests, as nginx does in
// 500 ms steps) or when the page is starved of CPU.
//
// The guard notices that state (playing, nothing loaded for one and a half
// part durations, and an unloaded part in the playlist right at the buffer's
// end) and restarts loading at the buffer's end, which makes hls.js pick
// that part. Include it after hls.min.js and
// call `guardLowLatencyParts(hls, video)` once per player.
"use strict";

window.guardLowLatencyParts = function guardLowLatencyParts(hls, video) {
  const state = { restarts: 0 };
  // Whether a load is under way (never interrupted), and since when hls.js has been idle.
  let loading = false;
  let idleSince = performance.now();
  const busy = () => { loading = true; };
  const idle = () => { loading = false; idleSince = performance.now(); };
  hls.on(Hls.Events.FRAG_LOADING, busy);
  hls.on(Hls.Events.FRAG_BUFFERED, idle);
  hls.on(Hls.Events.FRAG_LOAD_EMERGENCY_ABORTED, idle);
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.frag) idle(); });

  // The end of the buffered range that holds the playhead (null when none does).
  const bufferEnd = () => {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime + 0.1 && video.currentTime <= b.end(i)) return b.end(i);
    }
    return null;
  };

  const check = () => {
    const level = hls.levels[hls.currentLevel];
    const details = level && level.details;
    if (!details || !details.live || !details.partList || !details.partTarget || video.paused) return;
    const end = bufferEnd();
    // hls.js asks for a listed part within milliseconds; one and a half part
    // durations without a load is the race, caught before the buffer runs dry.
    if (loading || end === null || performance.now() - idleSince < 1500 * details.partTarget) return;
    const missing = details.partList.find((p) => !p.loaded && p.start <= end + 0.05 && p.end > end + 0.01);
    if (!missing) return;
    state.restarts++;
    idle();
    console.info(`hls part guard: part ${missing.fragment.sn}.${missing.index} was never loaded; loading from ${end.toFixed(3)}`);
    hls.stopLoad();
    hls.startLoad(end);
  };
  const timer = setInterval(check, 250);
  hls.on(Hls.Events.DESTROYING, () => clearInterval(timer));
  return state;
};
