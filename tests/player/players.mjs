// Several viewers at once: opens each page URL in its own browser context
// (its own HTTP cache, like separate viewers' machines), plays them all for a
// while and prints one JSON line with every player's report (measure.mjs),
// in the order of the URLs. Repeat a URL for several viewers of one page.
//
//   node players.mjs <seconds> <page url> [<page url>...]
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { openPlaying, watchHlsJs } from "./measure.mjs";

const [secondsArg, ...urls] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const browser = await chromium.launch(chromiumOptions);
try {
  const players = await Promise.all(urls.map(async (url) => {
    // The appliance's own HTTPS certificate may be self-signed (tests/tests/e2e/https.rs).
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const consoleErrors = [];
    const page = await openPlaying(context, url, consoleErrors);
    return { url, page, consoleErrors };
  }));
  const reports = await Promise.all(players.map(async ({ url, page, consoleErrors }) => {
    const report = await watchHlsJs(page, seconds);
    report.url = url;
    report.page = await page.evaluate(() => window.watch || null);
    report.console_errors = consoleErrors;
    return report;
  }));
  console.log(JSON.stringify({ players: reports }));
} finally {
  await browser.close();
}
