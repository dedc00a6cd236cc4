// The channel form's processing editor: the picture controls a ladder applies
// before its rungs (deinterlace, deblock, denoise, crop, rotate, flip, mirror,
// sharpen, output aspect and how each rung fills it) and the sound controls
// (loudness target, gain, fade-in, fade-out on stop, karaoke, output rate and layout; any
// output; the equaliser, compressor and limiter set through the API are kept
// as they were). `read()` gives the API's `processing` object; `controlFor`
// routes the API's field errors here.
import { h } from "./dom.js";

const select = (id, options, value) => h("select", { id, name: id }, options.map(([v, t]) => h("option", { value: v, selected: v === value }, t)));

export function processingEditor() {
  const deinterlace = select("p-deinterlace", [["off", "Off"], ["auto", "Auto (when the source is interlaced)"], ["on", "Always"]], "off");
  const denoise = select("p-denoise", [["off", "Off"], ["light", "Light"], ["medium", "Medium"], ["strong", "Strong"]], "off");
  const rotate = select("p-rotate", [["none", "None"], ["90", "90° clockwise"], ["180", "180°"], ["270", "270° clockwise"], ["source", "As the source's display matrix says"]], "none");
  const check = (id) => h("input", { type: "checkbox", id });
  const deblock = check("p-deblock");
  const flip = check("p-flip");
  const mirror = check("p-mirror");
  const number = (id, max) => h("input", { type: "number", id, min: 0, max, value: 0, inputmode: "numeric" });
  const crop = { top: number("p-crop-top", 4096), bottom: number("p-crop-bottom", 4096), left: number("p-crop-left", 4096), right: number("p-crop-right", 4096) };
  const sharpen = number("p-sharpen", 500);
  const aspect = h("input", { id: "p-aspect", placeholder: "source", pattern: "[0-9]{1,3}:[0-9]{1,3}", autocomplete: "off" });
  const scaling = select("p-scaling", [["fit", "Fit (bars)"], ["fill", "Fill (crop)"], ["stretch", "Stretch"]], "fit");
  const barColor = h("input", { type: "color", id: "p-bar-color", value: "#000000" });
  const error = h("div", { class: "error", id: "processing-error", role: "alert" });
  const labelled = (control, text) => h("div", {}, h("label", { for: control.id }, text), control);
  const box = (control, text) => h("label", { class: "radio", for: control.id }, control, text);

  const element = h("fieldset", { id: "processing" }, h("legend", {}, "Picture processing"),
    h("div", { class: "rung" }, labelled(deinterlace, "Deinterlace"), labelled(denoise, "Denoise"), labelled(sharpen, "Sharpen %"), box(deblock, "Deblock")),
    h("div", { class: "rung" }, labelled(rotate, "Rotate"), box(flip, "Flip (upside down)"), box(mirror, "Mirror")),
    h("div", { class: "rung" }, labelled(crop.top, "Crop top"), labelled(crop.bottom, "bottom"), labelled(crop.left, "left"), labelled(crop.right, "right")),
    h("div", { class: "rung" }, labelled(aspect, "Output aspect (W:H)"), labelled(scaling, "Scaling"), labelled(barColor, "Bar colour")),
    h("div", { class: "hint" }, "Applies from the next session; while the channel is live, saving asks whether to restart its pipeline now."),
    error);

  const loudness = select("s-loudness", [["off", "Off"], ["-23", "EBU R128 (-23 LUFS)"], ["-14", "Streaming (-14 LUFS)"]], "off");
  const gain = h("input", { type: "number", id: "s-gain", min: -30, max: 30, step: 0.5, value: 0 });
  const fadeIn = h("input", { type: "number", id: "s-fade-in", min: 0, max: 10000, value: 0, inputmode: "numeric" });
  const fadeOut = h("input", { type: "number", id: "s-fade-out", min: 0, max: 10000, value: 0, inputmode: "numeric" });
  const karaoke = check("s-karaoke");
  const rate = select("s-rate", [["", "As the source"], ["48000", "48 kHz"], ["44100", "44.1 kHz"], ["32000", "32 kHz"], ["24000", "24 kHz"], ["16000", "16 kHz"]], "");
  const mono = check("s-mono");
  const soundError = h("div", { class: "error", id: "sound-error", role: "alert" });
  const soundElement = h("fieldset", { id: "sound" }, h("legend", {}, "Sound processing"),
    h("div", { class: "rung" }, labelled(loudness, "Loudness"), labelled(gain, "Gain (dB)"), labelled(fadeIn, "Fade-in (ms)"), labelled(fadeOut, "Fade-out on stop (ms)")),
    h("div", { class: "rung" }, labelled(rate, "Output rate"), box(mono, "Mono (downmix)"), box(karaoke, "Karaoke (remove centre vocals)")),
    h("div", { class: "hint" }, "On a pass-through channel only the audio is transcoded then. Equaliser, compressor and limiter: through the API."),
    soundError);
  // The sound controls this form does not show, kept as they were.
  let keptSound = {};
  const soundControls = { gain_db: gain, fade_in_ms: fadeIn, fade_out_ms: fadeOut, karaoke, loudness, resample: rate };

  const controls = { deinterlace, denoise, rotate, deblock, flip, mirror, sharpen_percent: sharpen, aspect, scaling, bar_color: barColor };
  return {
    element,
    error,
    soundElement,
    soundError,
    // The control an API field error (`processing.picture.<name>...`) belongs to.
    controlFor(path) {
      const sound = /^processing\.sound\.(\w+)/.exec(path || "");
      if (sound) return soundControls[sound[1]] || gain;
      const m = /^processing\.picture\.(\w+)(?:\.(\w+))?/.exec(path || "");
      if (!m) return deinterlace;
      if (m[1] === "crop") return crop[m[2]] || crop.top;
      return controls[m[1]] || deinterlace;
    },
    set(processing) {
      const p = (processing && processing.picture) || {};
      deinterlace.value = p.deinterlace || "off";
      denoise.value = p.denoise || "off";
      rotate.value = p.rotate || "none";
      deblock.checked = Boolean(p.deblock);
      flip.checked = Boolean(p.flip);
      mirror.checked = Boolean(p.mirror);
      for (const side of Object.keys(crop)) crop[side].value = (p.crop && p.crop[side]) || 0;
      sharpen.value = p.sharpen_percent || 0;
      aspect.value = p.aspect || "";
      scaling.value = p.scaling || "fit";
      barColor.value = p.bar_color || "#000000";
      const s = (processing && processing.sound) || {};
      keptSound = s;
      loudness.value = s.loudness ? String(s.loudness.target_lufs) : "off";
      if (loudness.value === "" && s.loudness) loudness.append(h("option", { value: String(s.loudness.target_lufs), selected: true }, `${s.loudness.target_lufs} LUFS`));
      gain.value = s.gain_db || 0;
      fadeIn.value = s.fade_in_ms || 0;
      fadeOut.value = s.fade_out_ms || 0;
      karaoke.checked = Boolean(s.karaoke);
      rate.value = s.resample ? String(s.resample.rate) : "";
      mono.checked = Boolean(s.resample && s.resample.layout === "mono");
    },
    read() {
      const picture = {
        deinterlace: deinterlace.value, deblock: deblock.checked, denoise: denoise.value,
        crop: Object.fromEntries(Object.entries(crop).map(([side, input]) => [side, Number(input.value) || 0])),
        rotate: rotate.value, flip: flip.checked, mirror: mirror.checked,
        sharpen_percent: Number(sharpen.value) || 0, scaling: scaling.value, bar_color: barColor.value,
      };
      if (aspect.value.trim()) picture.aspect = aspect.value.trim();
      const sound = { ...keptSound, gain_db: Number(gain.value) || 0, fade_in_ms: Number(fadeIn.value) || 0, fade_out_ms: Number(fadeOut.value) || 0, karaoke: karaoke.checked };
      delete sound.loudness;
      delete sound.resample;
      if (loudness.value !== "off") sound.loudness = { ...(keptSound.loudness || {}), target_lufs: Number(loudness.value) };
      if (rate.value || mono.checked) sound.resample = { rate: Number(rate.value) || 48000, layout: mono.checked ? "mono" : "stereo" };
      return { picture, sound };
    },
  };
}
