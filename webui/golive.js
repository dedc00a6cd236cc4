// The broadcaster's page, /golive/{channel}: the camera and microphone of
// this browser sent to the channel over WHIP (RFC 9725). The stream key is
// typed in, or handed over in the URL's fragment (#key=...), which browsers
// never send to a server, so it stays out of logs. H.264 and Opus, as the
// appliance takes them; the encoder keeps the resolution and gives up frame
// rate when the network is short, since the ladder is made from this picture.
// ICE is not trickled: the offer goes once its candidates are gathered.
"use strict";

const $ = (id) => document.getElementById(id);
const channel = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const endpoint = `/whip/${encodeURIComponent(channel)}`;
$("channel").textContent = channel;
document.title = `Go live — ${channel}`;
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("key")) $("key").value = fragment.get("key");

// What the page does, for people and for the tests that drive it.
window.golive = { channel, state: "off-air", resource: null, error: null, stats: null };

let stream = null;
let pc = null;
let resource = null;
let statsTimer = null;

function setState(state, text) {
  window.golive.state = state;
  $("state").textContent = text;
  if (state === "live") $("state").dataset.live = ""; else delete $("state").dataset.live;
}

function showError(message) {
  window.golive.error = message;
  $("error").textContent = message;
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [["videoinput", $("camera")], ["audioinput", $("microphone")]]) {
    const chosen = select.value;
    select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) => {
      const option = document.createElement("option");
      option.value = d.deviceId;
      option.textContent = d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`;
      return option;
    }));
    if (chosen) select.value = chosen;
  }
}

async function openDevices() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  const [width, height] = $("size").value.split("x").map(Number);
  const camera = $("camera").value;
  const microphone = $("microphone").value;
  stream = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: 30 }, ...(camera ? { deviceId: { exact: camera } } : {}) },
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, ...(microphone ? { deviceId: { exact: microphone } } : {}) },
  });
  $("preview").srcObject = stream;
  await listDevices(); // labels appear once access is granted
}

// The codecs the appliance takes, first (the browser may offer them all).
function prefer(transceiver, kind, mime) {
  const codecs = RTCRtpSender.getCapabilities(kind)?.codecs || [];
  const wanted = codecs.filter((c) => c.mimeType.toLowerCase() === mime && (kind !== "video" || /packetization-mode=1/.test(c.sdpFmtpLine || "")));
  if (wanted.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences(wanted);
}

function gathered(peer, limitMs) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (peer.iceGatheringState === "complete") resolve(); };
    peer.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, limitMs); // host candidates come at once; do not wait on slow STUN
  });
}

async function problem(response) {
  try {
    const body = await response.json();
    return body.detail || body.title || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function start(event) {
  event.preventDefault();
  showError("");
  $("start").disabled = true;
  setState("connecting", "Connecting");
  try {
    if (!stream) await openDevices();
    pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    const kbps = Number($("bitrate").value) || 2500;
    for (const track of stream.getTracks()) {
      const video = track.kind === "video";
      if (video) track.contentHint = "motion";
      const transceiver = pc.addTransceiver(track, {
        direction: "sendonly",
        streams: [stream],
        sendEncodings: video ? [{ maxBitrate: kbps * 1000, maxFramerate: 30 }] : [{ maxBitrate: 128000 }],
      });
      prefer(transceiver, track.kind, video ? "video/h264" : "audio/opus");
      if (video) {
        const parameters = transceiver.sender.getParameters();
        parameters.degradationPreference = "maintain-resolution";
        await transceiver.sender.setParameters(parameters).catch(() => {});
      }
    }
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") setState("live", "Live");
      if (pc.connectionState === "failed") { showError("The connection to the appliance failed (UDP blocked?)"); stop(); }
      if (pc.connectionState === "disconnected") setState("connecting", "Reconnecting");
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 2000);
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/sdp", authorization: `Bearer ${$("key").value.trim()}` },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) throw new Error(await problem(response));
    resource = new URL(response.headers.get("location"), location.href).href;
    window.golive.resource = resource;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    $("stop").disabled = false;
    statsTimer = setInterval(showStats, 1000);
  } catch (e) {
    showError(String(e.message || e));
    await stop();
  }
}

async function stop() {
  clearInterval(statsTimer);
  const ending = resource;
  resource = null;
  if (pc) { pc.close(); pc = null; }
  if (ending) await fetch(ending, { method: "DELETE" }).catch(() => {});
  $("start").disabled = false;
  $("stop").disabled = true;
  setState("off-air", "Off air");
}

let last = null;
async function showStats() {
  if (!pc) return;
  const report = await pc.getStats();
  const now = { bytes: 0, at: performance.now(), video: null, audio: null, rtt: null, fps: null, size: null, limited: null };
  report.forEach((s) => {
    if (s.type === "outbound-rtp") {
      now.bytes += s.bytesSent;
      if (s.kind === "video") { now.fps = s.framesPerSecond; now.size = s.frameWidth ? `${s.frameWidth}×${s.frameHeight}` : null; now.limited = s.qualityLimitationReason; }
      const codec = s.codecId && report.get(s.codecId);
      if (codec) now[s.kind] = codec.mimeType.split("/")[1];
    }
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) now.rtt = s.currentRoundTripTime;
  });
  const kbps = last ? ((now.bytes - last.bytes) * 8) / (now.at - last.at) : 0;
  last = now;
  window.golive.stats = { kbps, fps: now.fps, size: now.size, video: now.video, audio: now.audio, rtt: now.rtt, limited: now.limited };
  $("sent-size").textContent = `${now.size || "–"} · ${Math.round(kbps)} kbit/s`;
  $("sent-fps").textContent = now.fps ? String(now.fps) : "–";
  $("sent-video").textContent = now.video ? `${now.video}${now.limited && now.limited !== "none" ? ` (limited: ${now.limited})` : ""}` : "–";
  $("sent-audio").textContent = now.audio || "–";
  $("rtt").textContent = now.rtt !== null ? `${Math.round(now.rtt * 1000)} ms` : "–";
}

$("setup").addEventListener("submit", start);
$("stop").addEventListener("click", stop);
for (const id of ["camera", "microphone", "size"]) $(id).addEventListener("change", () => { if (!pc) openDevices().catch((e) => showError(String(e.message || e))); });
window.addEventListener("pagehide", () => { if (resource) navigator.sendBeacon && fetch(resource, { method: "DELETE", keepalive: true }); });
if (!navigator.mediaDevices) showError("This page needs a secure origin (https, or localhost) to use the camera.");
else openDevices().catch((e) => showError(`Camera or microphone: ${e.message || e}`));
