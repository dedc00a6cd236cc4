// The live figures of a session in progress (the API's `live` object on a
// channel or session) as short texts for the dashboard and the channel page.
// Pure functions: strings in, strings out (the pages put them in text nodes).

/// "1.24 Mbit/s", "850 kbit/s".
export function bitrate(bps) {
  if (bps === null || bps === undefined) return "—";
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mbit/s` : `${Math.round(bps / 1e3)} kbit/s`;
}

/// "29.97 fps" (measured), with the declared rate when they differ noticeably.
export function fps(video) {
  if (!video || video.fps === null || video.fps === undefined) return "—";
  const measured = `${Number(video.fps.toFixed(2))} fps`;
  const declared = video.declared_fps;
  return declared && Math.abs(declared - video.fps) > 1 ? `${measured} (declared ${declared})` : measured;
}

/// "640×360 H264" or "no video yet".
export function videoText(live) {
  const v = live?.input?.video;
  return v ? `${v.width}×${v.height} ${v.codec.toUpperCase()}` : "no video yet";
}

/// The dashboard's one-line input summary: "640×360 H264, 30 fps, 1.24 Mbit/s".
export function inputText(live) {
  if (!live) return "—";
  const parts = [videoText(live)];
  if (live.input.video?.fps !== null && live.input.video?.fps !== undefined) parts.push(fps(live.input.video));
  if (live.input.bitrate_bps !== null) parts.push(bitrate(live.input.bitrate_bps));
  return parts.join(", ");
}

/// "AAC 48 kHz stereo", "none".
export function audioText(live) {
  const a = live?.input?.audio;
  if (!live) return "—";
  if (!a) return "none";
  const layout = a.channels === 1 ? "mono" : a.channels === 2 ? "stereo" : `${a.channels} ch`;
  const rate = a.sample_rate % 1000 ? `${(a.sample_rate / 1000).toFixed(1)} kHz` : `${a.sample_rate / 1000} kHz`;
  const transcoded = a.codec === "aac" ? "" : " (transcoded to AAC)";
  return `${a.codec.toUpperCase()} ${rate} ${layout}${transcoded}`;
}

/// "passthrough", "software on cpu: 360p, 240p (720p dropped above the source)", "starting…".
export function encoderText(live) {
  if (!live) return "—";
  const p = live.encoder;
  if (!p) return "starting (waiting for the first video frame)";
  if (p.mode === "passthrough") return "passthrough";
  let text = `${p.backend} on ${p.device}: ${p.kept.join(", ") || "no rung"}`;
  if (p.dropped.length) text += ` (${p.dropped.join(", ")} dropped above the source)`;
  if (p.moves) text += `, moved ${p.moves}×`;
  return text;
}

/// "Moved from nvenc cuda:0 to software cpu at 12:03:04: device lost".
export function moveText(move) {
  const at = new Date(move.at ?? Date.now()).toLocaleTimeString();
  return `Moved from ${move.from.backend} ${move.from.device} to ${move.to.backend} ${move.to.device} at ${at}: ${move.reason}`;
}
