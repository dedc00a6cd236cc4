// The channel form's processing editor in Debian's headless Chromium, against
// a running appliance with one software ladder channel. Prints
// `{"publish": <channel>}` when the Rust test (tests/tests/e2e/processing.rs)
// is to publish to it; the last line is the report.
//
//   node processing.mjs <appliance url> <admin password> <screenshot dir> <ladder channel>
//
// Checked and reported: a processing value the API refuses gets its error
// next to the processing editor (the control marked invalid); a valid one is
// saved and shown again when the form reopens; while the channel is live a
// processing change is answered with the 409's text and a "restart now"
// button, which saves it with `?restart=now`.
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { watchPage } from "./page-watch.mjs";
import { mkdirSync } from "node:fs";

const [base, password, shots, CHANNEL] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const report = { steps: [], console_errors: [], csp_violations: [] };
const began = Date.now();
const step = (name) => { report.steps.push(name); console.error(`step: ${name} (${((Date.now() - began) / 1000).toFixed(1)} s)`); };
const tell = (message) => console.log(JSON.stringify(message));

const browser = await chromium.launch(chromiumOptions);
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1200 } });
  const page = await context.newPage();
  const shot = watchPage(page, report, shots);
  const apiGet = (path) => page.evaluate(async (p) => (await fetch(`/api/v1${p}`)).json(), path);
  const edit = async () => {
    await page.goto(`${base}/console/#/channels/${CHANNEL}/edit`);
    await page.waitForSelector("#processing");
    await page.waitForFunction(() => document.getElementById("f-ladder").checked);
  };

  await page.goto(`${base}/console/`);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("#channels", { state: "attached" });
  step("signed in");

  // A value the API refuses: the error sits by the processing editor.
  await edit();
  await page.selectOption("#p-rotate", "90");
  await page.fill("#p-crop-left", "8");
  await page.fill("#p-aspect", "wide");
  await page.click("#channel-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("processing-error").textContent.length > 0);
  report.field_error = await page.textContent("#processing-error");
  report.aspect_invalid = await page.getAttribute("#p-aspect", "aria-invalid");
  await shot("processing-error");
  step("field error shown");

  // Fixed and saved; the form shows it again.
  await page.fill("#p-aspect", "16:9");
  await page.selectOption("#p-deinterlace", "auto");
  await page.selectOption("#rung-0-scaling", "stretch");
  await page.fill("#s-gain", "3");
  await page.selectOption("#s-loudness", "-14");
  await page.fill("#s-fade-out", "1500");
  await page.click("#channel-form button[type=submit]");
  await page.waitForFunction((c) => location.hash === `#/channels/${c}`, CHANNEL);
  await edit();
  await page.waitForFunction(() => document.getElementById("p-rotate").value === "90");
  report.reopened = {
    rotate: await page.inputValue("#p-rotate"), crop_left: await page.inputValue("#p-crop-left"),
    aspect: await page.inputValue("#p-aspect"), deinterlace: await page.inputValue("#p-deinterlace"),
    rung_scaling: await page.inputValue("#rung-0-scaling"), gain_db: await page.inputValue("#s-gain"),
    loudness: await page.inputValue("#s-loudness"), fade_out_ms: await page.inputValue("#s-fade-out"),
  };
  step("saved and shown again");

  // Live: a change asks before restarting the running pipeline.
  tell({ publish: CHANNEL });
  for (let i = 0; i < 300; i++) {
    const c = await apiGet(`/channels/${CHANNEL}`);
    if (c.live && c.live.encoder && c.live.encoder.filter_graph) break;
    await page.waitForTimeout(200);
  }
  await edit();
  await page.check("#p-flip");
  await page.click("#channel-form button[type=submit]");
  await page.waitForSelector("#restart-now");
  report.live_refusal = (await page.textContent(".form-error")).trim();
  await shot("processing-live");
  await page.click("#restart-now");
  await page.waitForFunction((c) => location.hash === `#/channels/${c}`, CHANNEL);
  step("restarted now");
} catch (e) {
  report.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
report.seconds = (Date.now() - began) / 1000;
console.log(JSON.stringify(report));
