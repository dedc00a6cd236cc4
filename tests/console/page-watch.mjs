// What both console walks do to a page: collect its console errors (and
// Content Security Policy violations among them) into the report, fail
// slow steps after 30 s, and save full-page screenshots into a folder.
export function watchPage(page, report, shots) {
  page.setDefaultTimeout(30000);
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    if (/Content Security Policy/i.test(text)) report.csp_violations.push(text);
    report.console_errors.push(text);
  });
  return (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}
