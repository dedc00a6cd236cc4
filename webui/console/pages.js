// The console's pages. Each renders into `main` and returns a function that
// stops its polling and players when the operator navigates away.
import { api, ApiProblem, session, signIn } from "./api.js";
import { h, replace, toast, confirmDialog, duration, bytes, copyText } from "./dom.js";
import { audioText, bitrate, encoderText, fps, inputText, moveText, videoText } from "./live.js";
import { processingEditor } from "./processing.js";
import { recordingsPanel } from "./recordings.js";

const POLL_MS = 2000;
const enc = encodeURIComponent;

function badge(text, kind = text) {
  return h("span", { class: `badge ${kind}` }, text);
}

function outputText(output) {
  if (!output || output.kind === "passthrough") return "pass-through (source as published)";
  const rungs = output.ladder.rungs.map((r) => `${r.height}p ${r.bitrate_kbps} kbit/s${r.codec === "hevc" ? " HEVC" : ""}${r.max_fps ? ` @${r.max_fps}` : ""}`);
  if (output.ladder.include_source) rungs.unshift("source");
  return rungs.join(", ");
}

// The iframe that embeds a channel's watch page in another site.
function embedSnippet(channel) {
  const watch = channel.playback_url.replace(/\/hls\/.*$/, `/watch/${enc(channel.name)}?embed=1`);
  return `<iframe src="${watch}" width="640" height="400" style="border:0" allow="autoplay; fullscreen" allowfullscreen></iframe>`;
}

function playbackPath(channel) {
  return `/hls/${enc(channel.name)}/index.m3u8`;
}

/// The channel page's player: the DVR playlist (rewindable) when the channel has one.
function rewindablePath(channel) {
  return channel.dvr_url ? `/hls/${enc(channel.name)}/dvr.m3u8` : playbackPath(channel);
}

/// Every `ms`, runs `tick` (never two at once); returns the stopper.
function poll(tick, ms = POLL_MS) {
  let stopped = false;
  let timer = null;
  const loop = async () => {
    try { await tick(); } catch (e) { if (!(e instanceof ApiProblem && e.status === 401)) console.warn(e); }
    if (!stopped) timer = setTimeout(loop, ms);
  };
  loop();
  return () => { stopped = true; clearTimeout(timer); };
}

/// hls.js in low-latency mode on a video element.
function attachPlayer(video, url, onLevels) {
  if (!window.Hls || !window.Hls.isSupported()) {
    video.src = url;
    return { destroy() { video.removeAttribute("src"); }, hls: null };
  }
  const hls = new window.Hls({ lowLatencyMode: true, backBufferLength: 30 });
  hls.on(window.Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); onLevels?.(hls); });
  hls.on(window.Hls.Events.ERROR, (_, d) => { if (d.fatal) { console.warn("hls fatal", d.details); } });
  window.guardLowLatencyParts?.(hls, video);
  hls.loadSource(url);
  hls.attachMedia(video);
  return { destroy() { hls.destroy(); }, hls };
}

// How long the preview's playback token of a private channel lasts; renewed a minute before.
const PREVIEW_TOKEN_SECONDS = 900;

/// The preview player of `channel` at `path`: a private channel's gets a
/// short-lived playback token, asked for with the operator's session and
/// renewed before it expires (the player reloads with the new one).
function attachPreview(video, channel, path, onLevels) {
  if (channel.playback !== "private") return attachPlayer(video, path, onLevels);
  const preview = {
    hls: null, inner: null, timer: null, destroyed: false, token: undefined,
    destroy() { this.destroyed = true; clearTimeout(this.timer); this.inner?.destroy(); },
  };
  const load = async () => {
    let made;
    try {
      made = await api.post(`/channels/${enc(channel.name)}/playback-tokens`, { ttl_seconds: PREVIEW_TOKEN_SECONDS });
    } catch (e) {
      console.warn(`no preview of private channel ${channel.name}: ${e.message}`);
      return;
    }
    if (preview.destroyed) return;
    preview.inner?.destroy();
    preview.token = made.token;
    preview.inner = attachPlayer(video, `${path}?token=${encodeURIComponent(made.token)}`, onLevels);
    preview.hls = preview.inner.hls;
    preview.timer = setTimeout(load, (PREVIEW_TOKEN_SECONDS - 60) * 1000);
  };
  load();
  return preview;
}

// ---------------------------------------------------------------- sign-in

export function signInPage(main, onSignedIn) {
  const error = h("div", { class: "form-error", id: "password-error", role: "alert" });
  const input = h("input", { id: "password", type: "password", name: "password", autocomplete: "current-password", required: true, "aria-describedby": "password-error" });
  const user = h("input", { id: "user", name: "user", value: "admin", required: true, autocomplete: "username", autocapitalize: "none", spellcheck: "false" });
  const form = h("form", { class: "panel signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { class: "muted" }, "Operator console of this appliance. The admin password was printed once at first start; reset it with ", h("code", {}, "appliance admin set-password"), ". Other users are made by an admin."),
    h("div", { class: "field" }, h("label", { for: "user" }, "User"), user),
    h("div", { class: "field" }, h("label", { for: "password" }, "Password"), input, error),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    try {
      await signIn(user.value.trim(), input.value);
      onSignedIn();
    } catch (e) {
      error.textContent = e.status === 429 ? e.message : e.status === 400 ? "Wrong user name or password." : e.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  replace(main, form);
  input.focus();
  return () => {};
}

// ---------------------------------------------------------------- dashboard

export function dashboardPage(main) {
  const grid = h("div", { class: "grid", id: "channels", "aria-live": "polite" });
  const empty = h("p", { class: "muted", hidden: true }, "No channels yet. ", h("a", { href: "#/new" }, "Create one"), ".");
  const updated = h("span", { class: "muted", id: "updated" });
  replace(main, h("div", { class: "row" }, h("h1", {}, "Channels"), h("span", { class: "spacer" }), updated, h("a", { class: "button", href: "#/new" }, "New channel")), empty, grid);
  const cards = new Map();

  const stop = poll(async () => {
    // One request for the whole wall: each channel carries its session in progress and live figures.
    const page = await api.get("/channels?limit=500");
    empty.hidden = page.items.length > 0;
    const seen = new Set();
    page.items.forEach((channel) => {
      seen.add(channel.name);
      let card = cards.get(channel.name);
      if (!card) {
        card = channelCard(channel);
        cards.set(channel.name, card);
        grid.append(card.el);
      }
      card.update(channel, channel.session || null);
    });
    for (const [name, card] of cards) if (!seen.has(name)) { card.destroy(); card.el.remove(); cards.delete(name); }
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  });
  return () => { stop(); for (const card of cards.values()) card.destroy(); };
}

function channelCard(channel) {
  const state = h("span", { class: "row" });
  const field = (name, text = "—") => h("dd", { "data-field": name }, text);
  const session = h("dd", {}, "—");
  const uptime = field("uptime");
  const input = field("input");
  const audio = field("audio");
  const output = h("dd");
  const encoder = field("encoder");
  const viewers = field("viewers");
  const dropped = field("dropped");
  const thumb = h("div", { class: "thumb" }, "offline");
  // The latest picture (one keyframe per thumbnail interval, made by the appliance): shown once it loads.
  const still = h("img", { class: "still", "data-field": "thumbnail", alt: `Latest picture of ${channel.name}`, hidden: true });
  still.addEventListener("load", () => { still.hidden = false; });
  still.addEventListener("error", () => { still.hidden = true; });
  const el = h("article", { class: "panel card", "data-channel": channel.name },
    h("div", { class: "row" }, still, h("h3", {}, h("a", { href: `#/channels/${enc(channel.name)}` }, channel.name)), h("span", { class: "spacer" }), state),
    h("dl", {}, h("dt", {}, "Session"), session, h("dt", {}, "Uptime"), uptime, h("dt", {}, "Input"), input,
      h("dt", {}, "Audio"), audio, h("dt", {}, "Output"), output, h("dt", {}, "Encoder"), encoder,
      h("dt", {}, "Viewers"), viewers, h("dt", {}, "Dropped units"), dropped),
    thumb);
  let player = null;
  let playing = null;
  return {
    el,
    update(c, s) {
      const live = s && s.state === "live";
      // The session's live figures (input as received, encoder placement, viewers) come with the channel.
      const figures = c.live && s && c.live.session === s.id ? c.live : null;
      const moved = figures?.encoder?.moves ? badge(`moved ${figures.encoder.moves}×`, "warn") : null;
      replace(state, moved, live ? badge("live") : badge(c.state));
      session.textContent = s ? `${s.state} (from ${s.peer})` : "no publisher";
      session.dataset.state = s ? s.state : "none";
      uptime.textContent = s ? duration(s.duration_ms) : "—";
      input.textContent = s ? (figures ? inputText(figures) : "RTMP publisher connected") : "—";
      audio.textContent = figures ? audioText(figures) : "—";
      output.textContent = outputText(c.output);
      encoder.textContent = figures ? encoderText(figures) : c.output.kind === "passthrough" ? "passthrough" : `ladder (${c.encoder_policy})`;
      viewers.textContent = figures ? String(figures.viewers) : "—";
      dropped.textContent = figures ? String(figures.input.dropped_units) : "—";
      if (live) {
        // A new URL each poll: the browser's cache would keep the picture for the thumbnail interval.
        // A private channel's picture needs its preview's token (there from the next poll on).
        const token = c.playback === "private" ? player?.token : "";
        if (token !== undefined) still.src = `/hls/${enc(c.name)}/thumb.jpg?at=${Date.now()}${token ? `&token=${enc(token)}` : ""}`;
      } else if (still.hasAttribute("src")) {
        still.removeAttribute("src");
        still.hidden = true;
      }
      if (live && playing !== s.id) {
        player?.destroy();
        const video = h("video", { muted: true, playsinline: true, "aria-label": `Live preview of ${c.name}` });
        video.muted = true;
        replace(thumb, video);
        player = attachPreview(video, c, playbackPath(c));
        playing = s.id;
      } else if (!live && playing) {
        player?.destroy(); player = null; playing = null;
        replace(thumb, "offline");
      }
    },
    destroy() { player?.destroy(); },
  };
}

// ---------------------------------------------------------------- channel

export function channelPage(main, name) {
  const title = h("h1", {}, name);
  const state = h("span");
  const actions = h("div", { class: "row" });
  const video = h("video", { id: "preview", class: "preview", muted: true, playsinline: true, controls: true, "aria-label": "Live preview" });
  video.muted = true;
  const latency = h("span", { id: "latency" }, "—");
  const levels = h("select", { id: "rendition", "aria-label": "Rendition" }, h("option", { value: "-1" }, "Auto"));
  const playingLevel = h("span", { id: "rendition-now", class: "muted", "aria-live": "polite" });
  const status = h("p", { class: "muted", id: "preview-status" }, "No live session.");
  const copies = h("div");
  const history = h("tbody");
  const details = h("dl", { class: "facts" });
  const liveFacts = h("dl", { class: "facts", id: "live" });
  const moveAlert = h("p", { class: "alert", id: "move-alert", role: "status", hidden: true });
  const restreams = restreamSection(name);
  const restreamPanel = restreams.panel;
  const recordings = recordingsPanel(name);
  // Back to the live edge after rewinding in the DVR window.
  const goLive = h("button", { type: "button", class: "ghost", id: "go-live", hidden: true, onclick: () => {
    const edge = player?.hls?.liveSyncPosition;
    if (Number.isFinite(edge)) video.currentTime = edge;
  } }, "Go live");
  replace(main,
    h("div", { class: "row" }, title, state, h("span", { class: "spacer" }), actions),
    h("div", { class: "two" },
      h("section", { class: "panel", "aria-labelledby": "preview-h" },
        h("h2", { id: "preview-h" }, "Preview"), video,
        h("div", { class: "row" }, h("span", {}, "Player latency: ", latency), goLive, h("span", { class: "spacer" }),
          playingLevel, h("label", { for: "rendition", class: "radio" }, "Rendition"), levels),
        status),
      h("div", {},
        h("section", { class: "panel", "aria-labelledby": "live-h" }, h("h2", { id: "live-h" }, "Live session"), moveAlert, liveFacts),
        h("section", { class: "panel", "aria-labelledby": "conn-h" }, h("h2", { id: "conn-h" }, "Connect"), copies,
          h("h2", {}, "Settings"), details))),
    h("section", { class: "panel", "aria-labelledby": "hist-h" }, h("h2", { id: "hist-h" }, "Sessions"),
      h("table", {}, h("thead", {}, h("tr", {}, ["Started", "State", "Duration", "Publisher", "Renditions", "End reason"].map((t) => h("th", { scope: "col" }, t)))), history)),
    recordings.panel,
    restreamPanel);

  let player = null;
  let playing = null;
  let revealed = false;
  let channel = null;
  levels.addEventListener("change", () => { if (player?.hls) player.hls.currentLevel = Number(levels.value); });
  const showLevel = (hls) => {
    const level = hls.levels[hls.currentLevel];
    playingLevel.textContent = level ? `playing ${level.height ? `${level.height}p` : `level ${hls.currentLevel}`}` : "";
  };
  const latencyTimer = setInterval(() => {
    const l = player?.hls?.latency;
    latency.textContent = Number.isFinite(l) && l > 0 ? `${l.toFixed(2)} s` : "—";
    // Rewound in the DVR window: offer the way back.
    goLive.hidden = !(Number.isFinite(l) && l > 10);
  }, 500);

  const act = async (what, fn) => {
    try { await fn(); toast(what); await refresh(); } catch (e) { toast(`${what} failed: ${e.message}`); }
  };
  const renderActions = (c) => {
    replace(actions,
      c.state === "active"
        ? h("button", { type: "button", id: "stop", class: "danger", onclick: () => act("Channel stopped", () => api.post(`/channels/${enc(name)}/stop`)) }, "Stop")
        : h("button", { type: "button", id: "start", onclick: () => act("Channel started", () => api.post(`/channels/${enc(name)}/start`)) }, "Start"),
      h("a", { class: "button ghost", href: `#/channels/${enc(name)}/edit` }, "Edit"),
      h("button", { type: "button", id: "rotate", class: "ghost", onclick: async () => {
        if (await confirmDialog(`Rotate the stream key of ${name}? The old key is refused from now on; a session in progress goes on.`, "Rotate key")) {
          act("Stream key rotated", () => api.post(`/channels/${enc(name)}/rotate-key`));
        }
      } }, "Rotate key"),
      h("button", { type: "button", id: "delete", class: "ghost", onclick: async () => {
        if (await confirmDialog(`Delete ${name}, its stream key and its session history?`, "Delete")) {
          try { await api.del(`/channels/${enc(name)}`); location.hash = "#/"; } catch (e) { toast(`Delete failed: ${e.message}`); }
        }
      } }, "Delete"));
  };
  const copyRow = (label, id, shown, value) => h("div", { class: "copy" },
    h("span", { class: "muted", id: `${id}-label` }, label), h("span", { class: "mono", id }, shown),
    h("button", { type: "button", class: "ghost", id: `${id}-copy`, "aria-describedby": `${id}-label`, onclick: () => copyText(value) }, "Copy"));
  const renderCopies = (c) => {
    const mask = "•".repeat(12);
    const base = c.publish_url.slice(0, c.publish_url.length - c.stream_key.length);
    const playback = c.playback_url;
    replace(copies,
      copyRow("RTMP URL", "rtmp-url", revealed ? c.publish_url : base + mask, c.publish_url),
      h("div", { class: "copy" }, h("span", { class: "muted", id: "key-label" }, "Stream key"),
        h("span", { class: "mono", id: "stream-key", "data-key": revealed ? c.stream_key : null }, revealed ? c.stream_key : mask),
        h("div", { class: "row" },
          h("button", { type: "button", class: "ghost", id: "reveal", "aria-pressed": String(revealed), onclick: () => { revealed = !revealed; renderCopies(channel); } }, revealed ? "Hide" : "Reveal"),
          h("button", { type: "button", class: "ghost", id: "stream-key-copy", "aria-describedby": "key-label", onclick: () => copyText(c.stream_key) }, "Copy"))),
      ...(c.whip_url ? [h("div", { class: "copy" },
        h("span", { class: "muted", id: "whip-url-label" }, "WHIP URL"), h("span", { class: "mono", id: "whip-url" }, c.whip_url),
        h("div", { class: "row" },
          h("button", { type: "button", class: "ghost", id: "whip-url-copy", "aria-describedby": "whip-url-label", onclick: () => copyText(c.whip_url) }, "Copy"),
          // The key rides in the fragment, which the browser never sends.
          h("a", { class: "button ghost", id: "go-live", target: "_blank", rel: "noopener", href: `/golive/${enc(c.name)}#key=${encodeURIComponent(c.stream_key)}` }, "Go live from this browser")))] : []),
      copyRow("Playback URL", "playback-url", playback, playback),
      copyRow("Embed", "embed", embedSnippet(c), embedSnippet(c)));
  };
  const renderDetails = (c) => replace(details,
    h("dt", {}, "Latency mode"), h("dd", {}, c.latency_mode),
    h("dt", {}, "Output"), h("dd", {}, outputText(c.output)),
    h("dt", {}, "Encoder policy"), h("dd", {}, c.encoder_policy),
    h("dt", {}, "Max session"), h("dd", {}, c.max_session_seconds ? duration(c.max_session_seconds * 1000) : "no limit"),
    h("dt", {}, "Recording"), h("dd", { "data-field": "recording" }, c.recording.enabled ? `on (${c.recording.renditions}${c.recording.source ? ", source" : ""})` : "off"),
    h("dt", {}, "DVR window"), h("dd", { "data-field": "dvr" }, c.dvr_url ? duration(c.dvr_window_seconds * 1000) : c.dvr_window_seconds ? "needs recording" : "off"));

  const fact = (label, value, name) => [h("dt", {}, label), h("dd", { "data-field": name }, value)];
  const renderLive = (c, current) => {
    const live = c.live && current && c.live.session === current.id ? c.live : null;
    const move = live?.encoder?.last_move;
    moveAlert.hidden = !move;
    moveAlert.textContent = move ? moveText(move) : "";
    if (!live) {
      replace(liveFacts, fact("Session", current ? current.state : "none", "state"));
      return;
    }
    replace(liveFacts,
      fact("Session", `${current.state} (from ${current.peer})`, "state"),
      fact("Uptime", duration(current.duration_ms), "uptime"),
      fact("Video", videoText(live), "video"),
      fact("Frame rate", fps(live.input.video), "fps"),
      fact("Bitrate", bitrate(live.input.bitrate_bps), "bitrate"),
      fact("Audio", audioText(live), "audio"),
      fact("Encoder", encoderText(live), "encoder"),
      fact("Viewers", String(live.viewers), "viewers"),
      fact("Dropped units", String(live.input.dropped_units), "dropped"));
  };

  const refresh = async () => {
    let c;
    try { c = await api.get(`/channels/${enc(name)}`); } catch (e) {
      if (e.status === 404) { replace(main, h("h1", {}, "No such channel"), h("a", { href: "#/" }, "Back to the dashboard")); stop(); }
      throw e;
    }
    channel = c;
    replace(state, badge(c.state));
    renderActions(c);
    renderCopies(c);
    renderDetails(c);
    const list = await api.get(`/channels/${enc(name)}/sessions?limit=100`);
    const sessions = list.items.slice().sort((a, b) => (a.id < b.id ? 1 : -1));
    replace(history, sessions.length ? sessions.slice(0, 20).map((s) => h("tr", {},
      h("td", {}, new Date(s.started_at).toLocaleString()), h("td", {}, s.state === "live" ? badge("live") : s.state),
      h("td", {}, duration(s.duration_ms)), h("td", { class: "mono" }, s.peer),
      h("td", {}, s.renditions.join(", ") || "—"), h("td", {}, s.end_reason || (s.error ? `error: ${s.error}` : "—"))))
      : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No sessions yet.")));
    const current = sessions.find((s) => s.id === c.current_session);
    renderLive(c, current);
    await restreams.refresh();
    await recordings.refresh();
    const live = current && current.state === "live";
    if (live && playing !== current.id) {
      player?.destroy();
      status.textContent = "Live.";
      player = attachPreview(video, c, rewindablePath(c), (hls) => {
        replace(levels, h("option", { value: "-1" }, "Auto"), hls.levels.map((l, i) => h("option", { value: String(i) }, l.height ? `${l.height}p ${Math.round(l.bitrate / 1000)} kbit/s` : `level ${i}`)));
        showLevel(hls);
        hls.on(window.Hls.Events.LEVEL_SWITCHED, () => showLevel(hls));
      });
      window.consolePlayer = player.hls;
      playing = current.id;
    } else if (!live && playing) {
      player?.destroy(); player = null; playing = null; window.consolePlayer = null;
      latency.textContent = "—";
      playingLevel.textContent = "";
      status.textContent = "No live session.";
      replace(levels, h("option", { value: "-1" }, "Auto"));
    } else if (!live) {
      status.textContent = current ? `Session ${current.state}…` : "No live session. Publish to the RTMP URL to go live.";
    }
  };
  const stop = poll(refresh, 3000);
  return () => { stop(); clearInterval(latencyTimer); player?.destroy(); window.consolePlayer = null; };
}

// Restream destinations of a channel: other platforms that get a rendition of
// every session. Keys are write-only (the API never returns them).
function restreamSection(name) {
  const rows = h("tbody", { id: "restreams" });
  const url = h("input", { id: "rs-url", type: "url", required: true, placeholder: "the rtmp, rtmps or srt URL, without the key", autocomplete: "off" });
  const key = h("input", { id: "rs-key", type: "password", placeholder: "stream key at the destination", autocomplete: "off" });
  const rendition = h("input", { id: "rs-rendition", value: "source", size: 8, "aria-describedby": "rs-rendition-help" });
  const refresh = async () => {
    const list = await api.get(`/channels/${enc(name)}/restreams`);
    replace(rows, list.length ? list.map((d) => {
      const link = d.link;
      const state = !d.enabled ? "disabled" : link ? link.state : "idle";
      const detail = link?.state === "retrying" && link.last_error ? link.last_error : link?.state === "live" ? `${bytes(link.bytes)} sent` : "";
      return h("tr", { "data-restream": d.id },
        h("td", { class: "mono" }, d.url, d.key_set ? h("span", { class: "muted" }, " + key •••") : ""),
        h("td", {}, d.rendition),
        h("td", { "data-field": "restream-state" }, badge(state, state === "live" ? "live" : state === "retrying" ? "error" : "idle")),
        h("td", { class: "muted", "data-field": "restream-detail" }, detail),
        h("td", {},
          h("button", { type: "button", class: "ghost", "aria-label": `${d.enabled ? "Disable" : "Enable"} restream to ${d.url}`, onclick: async () => {
            try { await api.patch(`/channels/${enc(name)}/restreams/${enc(d.id)}`, { enabled: !d.enabled }); toast(d.enabled ? "Restream disabled (from the next session)" : "Restream enabled (from the next session)"); await refresh(); } catch (e) { toast(e.message); }
          } }, d.enabled ? "Disable" : "Enable"),
          h("button", { type: "button", class: "ghost", "aria-label": `Remove restream to ${d.url}`, onclick: async () => {
            if (await confirmDialog(`Remove the restream to ${d.url}? A session in progress keeps sending until it ends.`, "Remove")) {
              try { await api.del(`/channels/${enc(name)}/restreams/${enc(d.id)}`); toast("Restream removed"); await refresh(); } catch (e) { toast(e.message); }
            }
          } }, "Remove")));
    }) : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No restream destinations.")));
  };
  const form = h("form", { id: "restream-form" },
    h("div", { class: "row" }, h("label", { for: "rs-url" }, "URL"), url),
    h("div", { class: "row" }, h("label", { for: "rs-key" }, "Key"), key,
      h("label", { for: "rs-rendition" }, "Rendition"), rendition,
      h("button", { type: "submit" }, "Add destination")),
    h("p", { class: "muted", id: "rs-rendition-help" }, "source, or a ladder rung's name. Applies from the next session."));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { url: url.value.trim(), rendition: rendition.value.trim() || "source" };
    if (key.value) body.key = key.value;
    try { await api.post(`/channels/${enc(name)}/restreams`, body); key.value = ""; url.value = ""; toast("Restream destination added"); await refresh(); } catch (e) { toast(e.message); }
  });
  const panel = h("section", { class: "panel", "aria-labelledby": "rs-h" }, h("h2", { id: "rs-h" }, "Restream"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Destination", "Rendition", "State", "", ""].map((t) => h("th", { scope: "col" }, t)))), rows), form);
  return { panel, refresh };
}

// ---------------------------------------------------------------- create / edit

const PRESETS = {
  "1080p / 720p / 480p": [[1080, 5000], [720, 2800], [480, 1200]],
  "720p / 480p / 360p": [[720, 2500], [480, 1200], [360, 700]],
  "480p / 240p": [[480, 1000], [240, 400]],
};

export function formPage(main, name) {
  const editing = Boolean(name);
  const fields = [];
  const formError = h("div", { class: "form-error", role: "alert" });
  const field = (prefix, id, label, control, hint) => {
    const error = h("div", { class: "error", id: `${id}-error` });
    control.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
    fields.push({ prefix, control, error });
    return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("div", { class: "hint", id: `${id}-hint` }, hint) : null, error);
  };
  const select = (id, options, value) => h("select", { id, name: id }, options.map(([v, t]) => h("option", { value: v, selected: v === value }, t)));

  const nameInput = h("input", { id: "f-name", name: "name", autocomplete: "off", readonly: editing });
  const latency = select("f-latency", [["ultra-low", "Ultra-low (LL-HLS, ~1 s)"], ["low", "Low (2 s segments)"], ["normal", "Normal (6 s segments)"]], "ultra-low");
  const policy = select("f-policy", [["prefer-hardware", "Prefer hardware, else software"], ["hardware-only", "Hardware only"], ["software", "Software only"]], "prefer-hardware");
  const maxSeconds = h("input", { id: "f-max", name: "max_session_seconds", type: "number", min: 1, max: 2592000, inputmode: "numeric" });
  const passthrough = h("input", { type: "radio", name: "output", id: "f-passthrough", value: "passthrough", checked: true });
  const ladderRadio = h("input", { type: "radio", name: "output", id: "f-ladder", value: "ladder" });
  const includeSource = h("input", { type: "checkbox", id: "f-source" });
  const recordingOn = h("input", { type: "checkbox", id: "f-record" });
  const recordSource = h("input", { type: "checkbox", id: "f-record-source" });
  const recordWhich = select("f-record-renditions", [["all", "Every rendition"], ["top-and-source", "The top rung and the source"], ["source", "The source alone"]], "all");
  let keptRecording = {};
  const dvrMinutes = h("input", { id: "f-dvr", name: "dvr_window_seconds", type: "number", min: 0, max: 1440, inputmode: "numeric", value: 120 });
  const playback = select("f-playback", [["public", "Public: anyone with the URL plays it"], ["private", "Private: playback needs a signed token"]], "public");
  const rungs = h("div", { id: "rungs" });
  const ladderBox = h("div", { hidden: true });
  const outputError = h("div", { class: "error", id: "output-error" });
  fields.push({ prefix: "output", control: ladderRadio, error: outputError });

  let rungCount = 0;
  const addRung = (height = 720, bitrate = 2500, codec = "h264", fps = "", when = {}, scaling = "") => {
    const i = rungCount++;
    const err = h("div", { class: "error", id: `rung-${i}-error` });
    const hIn = h("input", { type: "number", id: `rung-${i}-height`, value: height, min: 64, max: 4320, step: 2, "aria-describedby": err.id });
    const bIn = h("input", { type: "number", id: `rung-${i}-bitrate`, value: bitrate, min: 64, max: 200000, "aria-describedby": err.id });
    const cIn = select(`rung-${i}-codec`, [["h264", "H.264"], ["hevc", "HEVC"]], codec);
    const fIn = h("input", { type: "number", id: `rung-${i}-fps`, value: fps, min: 1, max: 240, placeholder: "source", "aria-describedby": err.id });
    const sIn = select(`rung-${i}-scaling`, [["", "Channel's"], ["fit", "Fit"], ["fill", "Fill"], ["stretch", "Stretch"]], scaling);
    const mIn = h("input", { type: "number", id: `rung-${i}-min-height`, value: when.min_height ?? "", min: 1, max: 8192, placeholder: "any", "aria-describedby": err.id });
    const row = h("div", { class: "rung", "data-rung": "" },
      h("div", {}, h("label", { for: hIn.id }, "Height"), hIn),
      h("div", {}, h("label", { for: bIn.id }, "kbit/s"), bIn),
      h("div", {}, h("label", { for: cIn.id }, "Codec"), cIn),
      h("div", {}, h("label", { for: fIn.id }, "Max fps"), fIn),
      h("div", {}, h("label", { for: mIn.id }, "Only for sources of at least (lines)"), mIn),
      h("div", {}, h("label", { for: sIn.id }, "Scaling"), sIn),
      h("button", { type: "button", class: "ghost", "aria-label": `Remove rung ${i + 1}`, onclick: () => row.remove() }, "Remove"), err);
    // The rendition's name (`media::RenditionSpec::name`), which the rung's own scaling mode is keyed by.
    row.rendition = () => `${Number(hIn.value)}p${fIn.value ? Number(fIn.value) : ""}${cIn.value === "hevc" ? "-hevc" : ""}`;
    row.scaling = () => sIn.value;
    row.read = () => {
      // Conditions the form does not show (set through the API) are kept.
      const conditions = { ...when, min_height: mIn.value ? Number(mIn.value) : undefined };
      const rung = { height: Number(hIn.value), bitrate_kbps: Number(bIn.value), codec: cIn.value, max_fps: fIn.value ? Number(fIn.value) : null };
      if (Object.values(conditions).some((v) => v !== undefined && v !== null)) rung.when = conditions;
      return rung;
    };
    rungs.append(row);
  };
  const presetButtons = Object.entries(PRESETS).map(([label, list]) => h("button", { type: "button", class: "ghost", onclick: () => { rungs.replaceChildren(); list.forEach(([hh, b]) => addRung(hh, b)); } }, label));
  const processing = processingEditor();
  fields.push({ prefix: "processing", control: processing.element, error: processing.error });
  const syncOutput = () => { ladderBox.hidden = !ladderRadio.checked; if (ladderRadio.checked && !rungs.children.length) PRESETS["720p / 480p / 360p"].forEach(([hh, b]) => addRung(hh, b)); };
  passthrough.addEventListener("change", syncOutput);
  ladderRadio.addEventListener("change", syncOutput);
  replace(ladderBox,
    h("div", { class: "row" }, h("span", { class: "muted" }, "Presets:"), presetButtons),
    rungs,
    h("div", { class: "row" }, h("button", { type: "button", class: "ghost", onclick: () => addRung() }, "Add rung"),
      h("label", { class: "radio", for: "f-source" }, includeSource, "Also offer the source as published")),
    processing.element);

  const submit = h("button", { type: "submit" }, editing ? "Save" : "Create channel");
  const form = h("form", { class: "panel", novalidate: true, id: "channel-form" },
    field("name", "f-name", "Name", nameInput, "1 to 64 of a–z, 0–9, - and _; used in URLs."),
    field("latency_mode", "f-latency", "Latency mode", latency),
    h("fieldset", {}, h("legend", {}, "Output"),
      h("label", { class: "radio", for: "f-passthrough" }, passthrough, "Pass-through"),
      h("label", { class: "radio", for: "f-ladder" }, ladderRadio, "Transcode a ladder"),
      ladderBox, outputError),
    processing.soundElement,
    field("encoder_policy", "f-policy", "Encoder policy", policy),
    field("max_session_seconds", "f-max", "Max session duration (seconds)", maxSeconds, "Empty: no limit."),
    field("playback", "f-playback", "Playback", playback, "Private: playlists and media need a token from POST /api/v1/channels/{name}/playback-tokens (the console's preview gets its own)."),
    h("fieldset", {}, h("legend", {}, "Recording"),
      h("label", { class: "radio", for: "f-record" }, recordingOn, "Record every session (catchup, MP4 export)"),
      field("recording.renditions", "f-record-renditions", "Renditions recorded", recordWhich),
      h("label", { class: "radio", for: "f-record-source" }, recordSource, "Also record the source as received (a ladder that does not offer it)"),
      field("dvr_window_seconds", "f-dvr", "DVR window (minutes)", dvrMinutes, "How far viewers can rewind a live session; 0: off. Served from the recording.")),
    formError,
    h("div", { class: "row" }, submit, h("a", { class: "button ghost", href: editing ? `#/channels/${enc(name)}` : "#/" }, "Cancel")));
  replace(main, h("h1", {}, editing ? `Edit ${name}` : "New channel"), form);

  if (editing) {
    api.get(`/channels/${enc(name)}`).then((c) => {
      nameInput.value = c.name;
      latency.value = c.latency_mode;
      policy.value = c.encoder_policy;
      maxSeconds.value = c.max_session_seconds ?? "";
      playback.value = c.playback || "public";
      processing.set(c.processing);
      keptRecording = c.recording;
      recordingOn.checked = c.recording.enabled;
      recordWhich.value = c.recording.renditions;
      recordSource.checked = Boolean(c.recording.source);
      dvrMinutes.value = String(Math.round(c.dvr_window_seconds / 60));
      if (c.output.kind === "ladder") {
        ladderRadio.checked = true;
        const own = (c.processing && c.processing.picture && c.processing.picture.rung_scaling) || {};
        const name = (r) => `${r.height}p${r.max_fps ?? ""}${r.codec === "hevc" ? "-hevc" : ""}`;
        c.output.ladder.rungs.forEach((r) => addRung(r.height, r.bitrate_kbps, r.codec || "h264", r.max_fps ?? "", r.when || {}, own[name(r)] || ""));
        includeSource.checked = c.output.ladder.include_source;
      }
      syncOutput();
    }).catch((e) => { formError.textContent = e.message; });
  } else nameInput.focus();

  const clearErrors = () => {
    formError.textContent = "";
    form.querySelectorAll(".error").forEach((e) => { e.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  };
  const showError = (problem) => {
    const path = problem.field || "";
    const rung = /^output\.ladder\.rungs\[(\d+)\]/.exec(path);
    const rows = [...rungs.querySelectorAll("[data-rung]")];
    if (rung && rows[Number(rung[1])]) {
      const row = rows[Number(rung[1])];
      row.querySelector(".error").textContent = problem.message;
      const input = row.querySelector(path.endsWith("bitrate_kbps") ? "input[id$=bitrate]" : path.endsWith("max_fps") ? "input[id$=fps]" : path.includes(".when.") ? "input[id$=min-height]" : "input");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const match = fields.filter((f) => path && (path === f.prefix || path.startsWith(`${f.prefix}.`) || path.startsWith(`${f.prefix}[`)))
      .sort((a, b) => b.prefix.length - a.prefix.length)[0];
    if (match && match.prefix === "processing" && problem.status !== 409) {
      (path.startsWith("processing.sound") ? processing.soundError : match.error).textContent = problem.message;
      const control = processing.controlFor(path);
      control.setAttribute("aria-invalid", "true");
      control.focus();
    } else if (match && match.prefix !== "processing") {
      match.error.textContent = problem.message;
      match.control.setAttribute("aria-invalid", "true");
      match.control.focus();
    } else formError.textContent = problem.message;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const output = ladderRadio.checked
      ? { kind: "ladder", ladder: { rungs: [...rungs.querySelectorAll("[data-rung]")].map((r) => r.read()), include_source: includeSource.checked } }
      : { kind: "passthrough" };
    // A pass-through channel decodes nothing: it has no picture processing.
    const picture = processing.read();
    const rows = [...rungs.querySelectorAll("[data-rung]")].filter((r) => r.scaling());
    if (rows.length) picture.picture.rung_scaling = Object.fromEntries(rows.map((r) => [r.rendition(), r.scaling()]));
    // Replaced whole by the API: what the form does not show (retain_days) is kept as it was.
    const recording = { ...keptRecording, enabled: recordingOn.checked, renditions: recordWhich.value, source: recordSource.checked };
    const dvr_window_seconds = dvrMinutes.value === "" ? 7200 : Math.round(Number(dvrMinutes.value) * 60);
    const body = { latency_mode: latency.value, output, encoder_policy: policy.value, max_session_seconds: maxSeconds.value === "" ? null : Number(maxSeconds.value), processing: ladderRadio.checked ? picture : { picture: {}, sound: picture.sound }, recording, dvr_window_seconds, playback: playback.value };
    submit.disabled = true;
    const save = async (query = "") => {
      const saved = editing ? await api.patch(`/channels/${enc(name)}${query}`, body) : await api.post("/channels", { name: nameInput.value, ...body, start: true });
      toast(editing ? "Saved" : `Channel ${saved.name} created`);
      location.hash = `#/channels/${enc(saved.name)}`;
    };
    try {
      await save();
    } catch (e) {
      if (e instanceof ApiProblem && e.status === 409 && e.field === "processing") {
        // Live: the operator chooses to restart the running pipeline now (a discontinuity, no end of stream).
        const restart = h("button", { type: "button", id: "restart-now", onclick: async () => {
          restart.disabled = true;
          try { await save("?restart=now"); } catch (again) { formError.textContent = again.message; }
        } }, "Restart the live pipeline now");
        replace(formError, e.message, " ", restart);
      } else if (e instanceof ApiProblem) showError(e); else formError.textContent = String(e);
    } finally {
      submit.disabled = false;
    }
  });
  return () => {};
}

// ---------------------------------------------------------------- system

const EVENT_TYPES = [
  "channel.created", "channel.updated", "channel.deleted", "channel.started", "channel.stopped",
  "session.init", "session.live", "session.ended", "session.error", "session.encoder_moved",
  "recording.ready", "recording.deleted", "recording.failed",
  "session.input_switched",
  "alert.raised", "alert.cleared",
];

/// What an event says besides its type and channel; alerts are what an operator should look at.
function eventDetails(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case "session.encoder_moved": return { alert: true, text: moveText({ ...d, at: ev.timestamp }) };
    case "session.error": return { alert: true, text: d.error || "failed" };
    // Off the primary is an alert (the backup or the slate is on air); back on it is not.
    case "session.input_switched": return { alert: d.to !== "primary", text: `on air: ${d.to} (from ${d.from}: ${d.reason})` };
    case "session.ended": return { alert: false, text: d.end_reason || "" };
    case "alert.raised": return { alert: true, text: `${d.rule}: ${d.detail || ""}` };
    case "alert.cleared": return { alert: false, text: `${d.rule}: ${d.detail || ""}` };
    case "recording.failed": return { alert: true, text: d.reason || "recording stopped" };
    case "recording.deleted": return { alert: false, text: d.reason || "" };
    case "recording.ready": return { alert: false, text: d.reason || "" };
    default: return { alert: false, text: "" };
  }
}

export function systemPage(main) {
  const admin = session.role === "admin";
  const host = h("div", { class: "facts", id: "host" });
  const encoders = h("tbody");
  const events = h("tbody", { id: "events" });
  const alerts = h("span", { class: "muted", id: "alert-count" });
  const tokens = h("tbody", { id: "tokens" });
  const hooks = h("tbody", { id: "webhooks" });
  const tokenName = h("input", { id: "t-name", required: true, placeholder: "dashboard", autocomplete: "off" });
  const tokenScope = h("select", { id: "t-role" }, ["viewer", "operator", "admin"].map((role) => h("option", { value: role }, role)));
  const tokenOut = h("div", { id: "new-token", role: "status" });
  const hookUrl = h("input", { id: "w-url", type: "url", required: true, placeholder: "https://example.net/hook" });
  const hookEvents = EVENT_TYPES.map((type) => h("input", { type: "checkbox", id: `w-ev-${type.replace(/\W/g, "-")}`, value: type }));
  const hookOut = h("div", { id: "new-webhook", role: "status" });
  const table = (heads, body) => h("table", {}, h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))), body);
  // A secret shown once, with its copy button.
  const once = (label, id, secret) => h("p", {}, `${label} (shown once; it cannot be shown again): `,
    h("code", { class: "mono", id }, secret), " ",
    h("button", { type: "button", class: "ghost", id: `${id}-copy`, onclick: () => copyText(secret) }, "Copy"));

  const tokenForm = h("form", { class: "row", id: "token-form" },
    h("label", { for: "t-name" }, "Name"), tokenName, h("label", { for: "t-role" }, "Role"), tokenScope, h("button", { type: "submit" }, "Create token"));
  tokenForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const created = await api.post("/tokens", { name: tokenName.value, role: tokenScope.value });
      replace(tokenOut, once(`Token ${created.name}`, "new-token-value", created.token));
      tokenName.value = "";
      await loadLists();
    } catch (err) { replace(tokenOut, h("p", { class: "form-error" }, err.message)); }
  });
  const hookForm = h("form", { id: "webhook-form" },
    h("div", { class: "row" }, h("label", { for: "w-url" }, "URL"), hookUrl, h("button", { type: "submit" }, "Add webhook")),
    h("fieldset", {}, h("legend", {}, "Events (none checked: all)"),
      h("div", { class: "checks" }, hookEvents.map((box) => h("label", { class: "radio", for: box.id }, box, box.value)))));
  hookForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const events = hookEvents.filter((box) => box.checked).map((box) => box.value);
      const created = await api.post("/webhooks", { url: hookUrl.value, events });
      replace(hookOut, once(`Signing secret of ${created.url}`, "new-webhook-secret", created.secret));
      hookUrl.value = "";
      for (const box of hookEvents) box.checked = false;
      await loadLists();
    } catch (err) { replace(hookOut, h("p", { class: "form-error" }, err.message)); }
  });

  replace(main, h("h1", {}, "System"),
    h("div", { class: "two" },
      h("section", { class: "panel", "aria-labelledby": "host-h" }, h("h2", { id: "host-h" }, "Host"), host),
      h("section", { class: "panel", "aria-labelledby": "enc-h" }, h("h2", { id: "enc-h" }, "Encoders"),
        table(["Device", "Backend", "Slots in use", "Status"], encoders))),
    h("section", { class: "panel", "aria-labelledby": "ev-h" }, h("div", { class: "row" }, h("h2", { id: "ev-h" }, "Recent events"), h("span", { class: "spacer" }), alerts),
      table(["Time", "Event", "Channel", "Details"], events)),
    // Tokens and webhooks are an admin's to manage.
    admin ? h("div", { class: "two" },
      h("section", { class: "panel", "aria-labelledby": "tok-h" }, h("h2", { id: "tok-h" }, "API tokens"), tokenForm, tokenOut, table(["Name", "Role", "Created", ""], tokens)),
      h("section", { class: "panel", "aria-labelledby": "wh-h" }, h("h2", { id: "wh-h" }, "Webhooks"), hookForm, hookOut, table(["URL", "Events", ""], hooks))) : null);

  const loadHost = async () => {
    const s = await api.get("/system");
    const rows = [
      ["CPU", `${s.cpu_cores} cores, load ${s.load_average.map((l) => l.toFixed(2)).join(" / ")}${s.cpu_percent === null ? "" : `, ${s.cpu_percent.toFixed(0)} % busy`}`],
      ["Memory", `${bytes(s.memory_total_bytes - s.memory_available_bytes)} of ${bytes(s.memory_total_bytes)} used`],
      ["Disk (data)", s.disk_total_bytes ? `${bytes(s.disk_total_bytes - s.disk_available_bytes)} of ${bytes(s.disk_total_bytes)} used` : "unknown"],
      ["Uptime", duration(s.uptime_seconds * 1000)],
      ...(s.temperatures.length ? s.temperatures.map((t) => [`Temp. ${t.sensor}`, `${t.celsius.toFixed(1)} °C`]) : [["Temperatures", "not exposed by this machine"]]),
    ];
    replace(host, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  };
  const loadEncoders = async () => {
    const e = await api.get("/encoders");
    replace(encoders, e.devices.map((d) => h("tr", {},
      h("td", {}, d.name, h("div", { class: "muted mono" }, d.id)), h("td", {}, d.backend),
      h("td", {}, d.capacity ? `${d.in_use?.sessions ?? 0} of ${d.capacity.sessions} sessions` : "—"),
      h("td", {}, d.available ? (d.healthy ? "available" : "failed; waiting for the next probe") : `unavailable: ${d.unavailable_reason || "unknown"}`))));
  };
  // Events are listed oldest first: walk to the newest once, then fetch only what follows.
  let recent = [];
  let after = null;
  const loadEvents = async () => {
    for (;;) {
      const page = await api.get(`/events?limit=500${after === null ? "" : `&cursor=${after}`}`);
      recent = recent.concat(page.items).slice(-15);
      if (page.items.length) after = page.items[page.items.length - 1].sequence;
      if (!page.next_cursor) break;
    }
    const items = recent.slice().reverse();
    const rows = items.map((ev) => {
      const { alert, text } = eventDetails(ev);
      return h("tr", { class: alert ? "alert-row" : null, "data-event": ev.type },
        h("td", {}, new Date(ev.timestamp).toLocaleString()),
        h("td", {}, alert ? [badge("alert", "warn"), " "] : null, ev.type),
        h("td", {}, ev.channel), h("td", {}, text));
    });
    const count = items.filter((ev) => eventDetails(ev).alert).length;
    alerts.textContent = count ? `${count} alert${count > 1 ? "s" : ""} among the latest ${items.length}` : "";
    replace(events, rows.length ? rows : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No events yet.")));
  };
  const loadLists = async () => {
    const t = await api.get("/tokens?limit=500");
    replace(tokens, t.items.length ? t.items.map((tok) => h("tr", { "data-token": tok.id }, h("td", {}, tok.name), h("td", {}, tok.channels ? `${tok.role} of ${tok.channels.join(", ")}` : tok.role), h("td", {}, new Date(tok.created_at).toLocaleString()),
      h("td", {}, h("button", { type: "button", class: "ghost", "aria-label": `Revoke token ${tok.name}`, onclick: async () => {
        if (await confirmDialog(`Revoke token ${tok.name}? Integrations using it stop working at once.`, "Revoke")) {
          try { await api.del(`/tokens/${enc(tok.id)}`); toast(`Token ${tok.name} revoked`); } catch (e) { toast(e.message); }
          loadLists();
        }
      } }, "Revoke"))))
      : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No API tokens.")));
    const w = await api.get("/webhooks?limit=500");
    replace(hooks, w.items.length ? w.items.map((hook) => h("tr", { "data-webhook": hook.id }, h("td", { class: "mono" }, hook.url), h("td", {}, hook.events.length ? hook.events.join(", ") : "all"),
      h("td", {}, h("button", { type: "button", class: "ghost", "aria-label": `Remove the webhook to ${hook.url}`, onclick: async () => {
        if (await confirmDialog(`Remove the webhook to ${hook.url}?`, "Remove")) {
          try { await api.del(`/webhooks/${enc(hook.id)}`); toast("Webhook removed"); } catch (e) { toast(e.message); }
          loadLists();
        }
      } }, "Remove"))))
      : h("tr", {}, h("td", { colspan: 3, class: "muted" }, "No webhooks.")));
  };
  if (admin) loadLists().catch((e) => toast(e.message));
  const stop = poll(async () => {
    await Promise.all([loadHost().catch(() => replace(host, "Host figures unavailable.")), loadEncoders(), loadEvents()]);
  }, 5000);
  return stop;
}
