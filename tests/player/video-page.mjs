// A page on the appliance's origin with one muted <video> and the
// appliance's vendored hls.js, that records every HTTP error (status 400 or
// more, failed requests other than aborts) and console error: what the
// drivers that play one stream (catchup, DVR) share.
export const page_html = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><video id="video" muted autoplay playsinline></video>`;

// Opens the page in a fresh context of `browser`; `onResponse` sees every response too.
export async function openVideoPage(browser, origin, { partGuard = false, onResponse = () => {} } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
  const http_errors = [];
  const console_errors = [];
  page.on("response", (r) => {
    if (r.status() >= 400) http_errors.push(`${r.status()} ${r.url()}`);
    onResponse(r);
  });
  page.on("requestfailed", (r) => {
    const why = r.failure()?.errorText ?? "";
    if (!why.includes("ERR_ABORTED")) http_errors.push(`${why} ${r.url()}`);
  });
  page.on("console", (m) => { if (m.type() === "error") console_errors.push(m.text()); });
  // A page on the appliance's origin, as on the watch page.
  await page.goto(`${origin}/healthz`);
  await page.setContent(page_html);
  await page.addScriptTag({ url: `${origin}/assets/hls.min.js` });
  if (partGuard) await page.addScriptTag({ url: `${origin}/assets/hls-part-guard.js` });
  return { page, http_errors, console_errors };
}
