// The viewer's page, /watch/{channel} (?embed=1 inside an iframe; ?token= for a private channel): hls.js
// tuned for the channel's latency mode, or the browser's own HLS on Safari
// and iOS; a quality menu when there is a ladder, captions when the stream
// has some, and the latency shown. No outside resources: hls.js is served by
// the appliance.
"use strict";

const $ = (id) => document.getElementById(id);
const video = $("video");
const channel = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
// A private channel's page is opened with its viewer's playback token (`?token=`), handed on to the playlist.
const token = new URLSearchParams(location.search).get("token");
const source = `/hls/${encodeURIComponent(channel)}/index.m3u8${token ? `?token=${encodeURIComponent(token)}` : ""}`;
if (new URLSearchParams(location.search).has("embed")) document.body.classList.add("embed");
$("title").textContent = channel;
document.title = `${channel} — live`;

// How each latency mode is played. `target` is the distance behind the
// playlist's live edge to start at and hold (hls.js's latency), from the
// media playlist; `lowWater` the buffer below which playback slows down
// rather than stall; `gain` the playback-rate change per second of error.
const MODES = {
  // Parts and blocking reloads: a second behind the edge (at least the
  // server's PART-HOLD-BACK) leaves room for a lost packet's resend.
  "ultra-low": { target: (p) => Math.max(1.0, p.partHoldBack), lowWater: 0.3, gain: 0.5, deadband: 0.1 },
  // Whole segments: three target durations from the end, as RFC 8216bis asks.
  low: { target: (p) => 3 * p.targetDuration, lowWater: 1.0, gain: 0.1, deadband: 0.4 },
  normal: { target: (p) => 3 * p.targetDuration, lowWater: 2.0, gain: 0.05, deadband: 1.0 },
};
const RATE_MIN = 0.8;
const RATE_MAX = 1.2;

let hls = null;
let mode = null;
let retry = null;
window.watch = { channel, mode: null, target: null, native: false };

function setState(text, live) {
  $("state").textContent = text;
  if (live) $("state").dataset.live = ""; else delete $("state").dataset.live;
}

// The first media playlist, to know the channel's mode before the player starts.
async function describe() {
  const multivariant = await fetch(source, { cache: "no-store" });
  if (!multivariant.ok) throw new Error(multivariant.status === 404 ? "offline" : `HTTP ${multivariant.status}`);
  const text = await multivariant.text();
  const uri = text.split("\n").find((l) => l && !l.startsWith("#"));
  if (!uri) throw new Error("offline");
  const media = await fetch(new URL(uri.trim(), new URL(source, location.href)), { cache: "no-store" });
  if (!media.ok) throw new Error(`HTTP ${media.status}`);
  const playlist = await media.text();
  const number = (re) => { const m = playlist.match(re); return m ? Number(m[1]) : 0; };
  const p = {
    targetDuration: number(/#EXT-X-TARGETDURATION:(\d+)/),
    partTarget: number(/#EXT-X-PART-INF:PART-TARGET=([\d.]+)/),
    partHoldBack: number(/PART-HOLD-BACK=([\d.]+)/),
  };
  const name = p.partTarget > 0 ? "ultra-low" : p.targetDuration <= 2 ? "low" : "normal";
  return { name, ...MODES[name], target: MODES[name].target(p), targetDuration: p.targetDuration || 1 };
}

function later(seconds) {
  clearTimeout(retry);
  retry = setTimeout(start, seconds * 1000);
}

async function start() {
  if (hls) { hls.destroy(); hls = null; }
  try {
    mode = await describe();
  } catch (e) {
    setState(e.message === "offline" ? "Offline: waiting for the channel to go live" : `Unavailable (${e.message}); retrying`);
    return later(3);
  }
  Object.assign(window.watch, { mode: mode.name, target: mode.target });
  // Safari and iOS play HLS (and its low-latency extensions) natively.
  const native = video.canPlayType("application/vnd.apple.mpegurl") !== "" &&
    (/Apple/.test(navigator.vendor) || !window.Hls || !Hls.isSupported());
  window.watch.native = native;
  if (native) {
    video.src = source;
    video.addEventListener("loadedmetadata", () => { setState("Live", true); video.play().catch(() => {}); }, { once: true });
    return;
  }
  if (!window.Hls || !Hls.isSupported()) {
    setState("This browser cannot play HLS");
    return;
  }
  hls = new Hls({
    lowLatencyMode: mode.name === "ultra-low",
    liveSyncDuration: mode.target,
    // Far behind (a long stall, a sleeping tab): jump back to the target.
    liveMaxLatencyDuration: mode.target + Math.max(3, 2 * mode.targetDuration),
    // The rate is ours to hold (below); hls.js only speeds up.
    maxLiveSyncPlaybackRate: 1,
    backBufferLength: Math.max(10, 3 * mode.targetDuration),
  });
  window.hlsPlayer = hls;
  window.partGuard = guardLowLatencyParts(hls, video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => { showQualities(); video.play().catch(() => {}); });
  hls.on(Hls.Events.LEVELS_UPDATED, showQualities);
  hls.on(Hls.Events.LEVEL_SWITCHED, showQualities);
  hls.on(Hls.Events.FRAG_BUFFERED, () => setState("Live", true));
  hls.on(Hls.Events.ERROR, (_, d) => {
    if (!d.fatal) return;
    if (d.type === Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); return; }
    setState("Reconnecting");
    later(2);
  });
  hls.loadSource(source);
  hls.attachMedia(video);
}

// The quality menu: shown for a ladder, "Auto" lets hls.js choose.
function showQualities() {
  const menu = $("quality");
  const levels = hls ? hls.levels : [];
  $("quality-label").hidden = levels.length < 2;
  if (levels.length < 2) return;
  const now = levels[hls.currentLevel];
  const label = (l) => (l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s`);
  const options = [["-1", hls.autoLevelEnabled && now ? `Auto (${label(now)})` : "Auto"]];
  levels.map((l, i) => [i, l]).sort((a, b) => b[1].bitrate - a[1].bitrate)
    .forEach(([i, l]) => options.push([String(i), `${label(l)} · ${Math.round(l.bitrate / 1000)} kb/s`]));
  const selected = hls.autoLevelEnabled ? "-1" : String(hls.currentLevel);
  menu.replaceChildren(...options.map(([value, text]) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    o.selected = value === selected;
    return o;
  }));
}
$("quality").addEventListener("change", (e) => { if (hls) hls.currentLevel = Number(e.target.value); });

// Captions: every text track the stream brings (subtitle renditions, CEA-608 in the video).
function showCaptions() {
  const tracks = [...video.textTracks].filter((t) => t.kind === "captions" || t.kind === "subtitles");
  $("captions-label").hidden = tracks.length === 0;
  const menu = $("captions");
  const showing = tracks.findIndex((t) => t.mode === "showing");
  const options = [["-1", "Off"], ...tracks.map((t, i) => [String(i), t.label || t.language || `Track ${i + 1}`])];
  menu.replaceChildren(...options.map(([value, text]) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    o.selected = Number(value) === showing;
    return o;
  }));
}
video.textTracks.addEventListener("addtrack", showCaptions);
video.textTracks.addEventListener("removetrack", showCaptions);
$("captions").addEventListener("change", (e) => {
  const chosen = Number(e.target.value);
  [...video.textTracks].filter((t) => t.kind === "captions" || t.kind === "subtitles")
    .forEach((t, i) => { t.mode = i === chosen ? "showing" : "disabled"; });
});

function bufferAhead() {
  const b = video.buffered;
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) <= video.currentTime + 0.05 && video.currentTime <= b.end(i)) return b.end(i) - video.currentTime;
  }
  return 0;
}

// Holds the target latency: a little faster when behind, a little slower
// when ahead or when the buffer runs thin, always within 0.8-1.2.
function holdLatency() {
  if (!hls || !mode || video.paused) return;
  const latency = hls.latency;
  const target = hls.targetLatency;
  if (!Number.isFinite(latency) || !Number.isFinite(target) || latency <= 0) return;
  const ahead = bufferAhead();
  let rate = 1;
  if (ahead < mode.lowWater) {
    rate = RATE_MIN + (1 - RATE_MIN) * (ahead / mode.lowWater);
  } else if (Math.abs(latency - target) > mode.deadband) {
    rate = 1 + mode.gain * (latency - target);
  }
  rate = Math.min(RATE_MAX, Math.max(RATE_MIN, rate));
  if (Math.abs(video.playbackRate - rate) >= 0.01) video.playbackRate = Math.round(rate * 100) / 100;
}

function showLatency() {
  let latency = hls ? hls.latency : NaN;
  if (window.watch.native && typeof video.getStartDate === "function") {
    const start = video.getStartDate().getTime();
    if (Number.isFinite(start)) latency = (Date.now() - start) / 1000 - video.currentTime;
  }
  $("latency").textContent = Number.isFinite(latency) && latency > 0 ? `${latency.toFixed(1)} s` : "–";
}

setInterval(() => { holdLatency(); showLatency(); }, 250);
video.addEventListener("ended", () => { setState("The stream ended; waiting for the next one"); later(3); });
start();
