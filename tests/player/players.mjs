// Several viewers at once: opens the same page in `count` separate browser
// contexts (each with its own HTTP cache, like separate viewers' machines),
// plays them all for a while and prints one JSON line with every player's
// report (see measure.mjs).
//
//   node players.mjs <page url> <seconds> <count>
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { openPlaying, watchHlsJs } from "./measure.mjs";

const [url, secondsArg, countArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const count = Number(countArg || 3);
const browser = await chromium.launch(chromiumOptions);
try {
  const players = await Promise.all(Array.from({ length: count }, async () => {
    const context = await browser.newContext();
    const consoleErrors = [];
    const page = await openPlaying(context, url, consoleErrors);
    return { page, consoleErrors };
  }));
  const reports = await Promise.all(players.map(async ({ page, consoleErrors }) => {
    const report = await watchHlsJs(page, seconds);
    report.console_errors = consoleErrors;
    return report;
  }));
  console.log(JSON.stringify({ players: reports }));
} finally {
  await browser.close();
}
