// Recordings in the console: the list of a channel's recordings (and of all
// channels'), and a recording's page: its catchup played by hls.js (with the
// part guard), a seek bar that previews the thumbnail of the time under the
// pointer (from the recording's `thumbnails.vtt` sprite sheets), the MP4
// download, lock and delete with confirmation.
import { api } from "./api.js";
import { h, replace, toast, confirmDialog, duration, bytes } from "./dom.js";

const enc = encodeURIComponent;

// How long the catchup page's playback token of a private channel lasts.
const CATCHUP_TOKEN_SECONDS = 4 * 3600;

function recordingPath(channel, session, file) {
  return `/hls/${enc(channel)}/recordings/${enc(session)}/${file}`;
}

function recordingHref(r) {
  return `#/channels/${enc(r.channel)}/recordings/${enc(r.session)}`;
}

function recordingRow(r, withChannel) {
  return h("tr", { "data-recording": r.session },
    withChannel ? h("td", {}, h("a", { href: `#/channels/${enc(r.channel)}` }, r.channel)) : null,
    h("td", {}, h("a", { href: recordingHref(r) }, new Date(r.started_at).toLocaleString())),
    h("td", {}, r.state), h("td", {}, duration(r.duration_seconds * 1000)), h("td", {}, bytes(r.bytes)),
    h("td", {}, r.renditions.map((x) => x.name).join(", ")), h("td", {}, r.locked ? "locked" : ""));
}

function recordingTable(rows, withChannel) {
  const heads = [withChannel ? "Channel" : null, "Started", "State", "Duration", "Size", "Renditions", ""].filter((t) => t !== null);
  return h("table", {}, h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))), rows);
}

/// The channel page's panel of its recordings, newest first.
export function recordingsPanel(name) {
  const rows = h("tbody", { id: "recordings" });
  const refresh = async () => {
    const list = await api.get(`/channels/${enc(name)}/recordings`);
    replace(rows, list.items.length ? list.items.map((r) => recordingRow(r, false))
      : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No recordings. Turn recording on in the channel's settings.")));
  };
  const panel = h("section", { class: "panel", "aria-labelledby": "rec-h" }, h("h2", { id: "rec-h" }, "Recordings"), recordingTable(rows, false));
  return { panel, refresh };
}

/// Every channel's recordings.
export function recordingsPage(main) {
  const rows = h("tbody", { id: "recordings" });
  replace(main, h("h1", {}, "Recordings"), h("section", { class: "panel" }, recordingTable(rows, true)));
  (async () => {
    const channels = await api.get("/channels?limit=500");
    const lists = await Promise.all(channels.items.map((c) => api.get(`/channels/${enc(c.name)}/recordings`)));
    const all = lists.flatMap((l) => l.items).sort((a, b) => (a.started_at < b.started_at ? 1 : -1));
    replace(rows, all.length ? all.map((r) => recordingRow(r, true)) : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No recordings yet.")));
  })().catch((e) => toast(e.message));
  return () => {};
}

/// "00:01:02.500" to seconds.
function vttTime(text) {
  const parts = text.trim().split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

/// The cues of a scrubbing track: [{ start, end, url, x, y, w, h }], URLs resolved against `base`.
export function parseScrubbingTrack(text, base) {
  const cues = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const times = /^(\S+)\s+-->\s+(\S+)/.exec(lines[i]);
    const target = lines[i + 1] && /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(lines[i + 1].trim());
    if (!times || !target) continue;
    const [, file, x, y, w, hh] = target;
    cues.push({ start: vttTime(times[1]), end: vttTime(times[2]), url: new URL(file, base).pathname, x: +x, y: +y, w: +w, h: +hh });
  }
  return cues;
}

/// A recording's page: catchup player, scrubbing preview, download, lock, delete.
export function recordingPage(main, channel, session) {
  // `?token=` of a private channel's playback token, once the page has one.
  let query = "";
  const catchupPath = (file) => `${recordingPath(channel, session, file)}${query}`;
  const video = h("video", { id: "catchup", class: "preview", muted: true, playsinline: true, controls: true, "aria-label": "Recording" });
  video.muted = true;
  const facts = h("dl", { class: "facts", id: "recording-facts" });
  const actions = h("div", { class: "row" });
  const scrub = h("input", { id: "scrub", type: "range", min: 0, max: 1, step: 0.1, value: 0, "aria-label": "Seek" });
  const preview = h("div", { id: "scrub-preview", class: "scrub-preview", hidden: true, "aria-hidden": "true" });
  const previewTime = h("span", { class: "muted" });
  replace(main,
    h("div", { class: "row" }, h("h1", {}, "Recording of ", h("a", { href: `#/channels/${enc(channel)}` }, channel)), h("span", { class: "spacer" }), actions),
    h("section", { class: "panel", "aria-labelledby": "catchup-h" }, h("h2", { id: "catchup-h" }, "Catchup"), video,
      h("div", { class: "scrub" }, preview, scrub), previewTime),
    h("section", { class: "panel" }, facts));

  let hls = null;
  let cues = [];
  const showPreview = (seconds) => {
    const cue = cues.find((c) => c.start <= seconds && seconds < c.end) || cues[cues.length - 1];
    if (!cue) return;
    preview.hidden = false;
    // CSSOM properties, not a style attribute: the console's CSP allows no inline style.
    preview.style.width = `${cue.w}px`;
    preview.style.height = `${cue.h}px`;
    preview.style.backgroundImage = `url("${cue.url}")`;
    preview.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    preview.dataset.sprite = `${cue.url}#xywh=${cue.x},${cue.y},${cue.w},${cue.h}`;
    previewTime.textContent = `${duration(seconds * 1000)}`;
  };
  const hovered = (event) => {
    const box = scrub.getBoundingClientRect();
    const share = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    return share * Number(scrub.max);
  };
  scrub.addEventListener("pointermove", (event) => {
    showPreview(hovered(event));
    // Over the pointer, kept inside the bar.
    const box = scrub.getBoundingClientRect();
    const left = event.clientX - box.left - preview.offsetWidth / 2;
    preview.style.left = `${Math.max(0, Math.min(box.width - preview.offsetWidth, left))}px`;
  });
  scrub.addEventListener("pointerleave", () => { preview.hidden = true; });
  scrub.addEventListener("input", () => { showPreview(Number(scrub.value)); video.currentTime = Number(scrub.value); });
  video.addEventListener("timeupdate", () => { if (document.activeElement !== scrub) scrub.value = String(video.currentTime); });
  video.addEventListener("durationchange", () => { if (Number.isFinite(video.duration)) scrub.max = String(video.duration); });

  const render = (r) => {
    replace(facts,
      h("dt", {}, "State"), h("dd", { "data-field": "state" }, r.state),
      h("dt", {}, "Started"), h("dd", {}, new Date(r.started_at).toLocaleString()),
      h("dt", {}, "Duration"), h("dd", { "data-field": "duration" }, duration(r.duration_seconds * 1000)),
      h("dt", {}, "Size"), h("dd", {}, bytes(r.bytes)),
      h("dt", {}, "Renditions"), h("dd", {}, r.renditions.map((x) => `${x.name}${x.resolution ? ` (${x.resolution})` : ""}`).join(", ")));
    const finished = r.state !== "recording";
    replace(actions,
      finished ? h("a", { class: "button", id: "download", href: catchupPath("export.mp4"), download: `${channel}-${session}.mp4` }, "Download MP4") : null,
      h("button", { type: "button", class: "ghost", id: "lock", "aria-pressed": String(r.locked), onclick: async () => {
        try {
          const path = `/channels/${enc(channel)}/recordings/${enc(session)}/lock`;
          render(r.locked ? await api.del(path) : await api.put(path));
          toast(r.locked ? "Unlocked: retention may delete it" : "Locked: retention never deletes it");
        } catch (e) { toast(e.message); }
      } }, r.locked ? "Unlock" : "Lock"),
      h("button", { type: "button", class: "ghost", id: "delete-recording", disabled: r.locked || !finished, onclick: async () => {
        if (await confirmDialog(`Delete this recording of ${channel}? Its media, thumbnails and catchup are removed for good.`, "Delete")) {
          try { await api.del(`/channels/${enc(channel)}/recordings/${enc(session)}`); toast("Recording deleted"); location.hash = `#/channels/${enc(channel)}`; } catch (e) { toast(e.message); }
        }
      } }, "Delete"));
  };

  (async () => {
    // A private channel's catchup needs a playback token too (the console asks with the operator's session).
    const c = await api.get(`/channels/${enc(channel)}`);
    if (c.playback === "private") {
      const made = await api.post(`/channels/${enc(channel)}/playback-tokens`, { ttl_seconds: CATCHUP_TOKEN_SECONDS });
      query = `?token=${enc(made.token)}`;
    }
    const r = await api.get(`/channels/${enc(channel)}/recordings/${enc(session)}`);
    render(r);
    if (r.state === "recording") {
      replace(previewTime, "The session is still recording: its catchup plays once it ends (its channel page rewinds it meanwhile).");
      return;
    }
    if (r.scrubbing_url) {
      const vtt = catchupPath("thumbnails.vtt");
      const response = await fetch(vtt, { credentials: "same-origin" });
      if (response.ok) cues = parseScrubbingTrack(await response.text(), new URL(vtt, location.href));
    }
    if (!window.Hls || !window.Hls.isSupported()) { video.src = catchupPath("master.m3u8"); return; }
    hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, (_, d) => { if (d.fatal) console.warn("hls fatal", d.details); });
    window.guardLowLatencyParts?.(hls, video);
    hls.loadSource(catchupPath("master.m3u8"));
    hls.attachMedia(video);
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
    window.consoleCatchup = hls;
  })().catch((e) => toast(e.message));
  return () => { hls?.destroy(); window.consoleCatchup = null; };
}
