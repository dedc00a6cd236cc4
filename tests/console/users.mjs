// The console's users page in Debian's headless Chromium: the admin signs in,
// sees the Users link, makes an operator with the form and finds it listed,
// and the audit page shows who made it;
// the operator signs in by name, sees no Users link, no token or webhook
// forms, the users page says it is the admin's, and the API answers it 403;
// the admin disables the operator, whose open page is signed out at its next
// request. Prints one JSON report line.
//
//   node users.mjs <appliance url> <admin password> <screenshot dir>
import { chromium } from "playwright-core";
import { chromiumOptions } from "../chromium-options.mjs";
import { watchPage } from "./page-watch.mjs";
import { mkdirSync } from "node:fs";

const [base, password, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const report = { steps: [], console_errors: [], csp_violations: [] };
const step = (name) => { report.steps.push(name); console.error(`step: ${name}`); };

async function signIn(page, user, pass) {
  await page.goto(`${base}/console/`);
  await page.waitForSelector("#password");
  await page.fill("#user", user);
  await page.fill("#password", pass);
  await page.click("button[type=submit]");
  await page.waitForSelector("#channels", { state: "attached" });
}

const browser = await chromium.launch(chromiumOptions);
try {
  const admin = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  const shot = watchPage(admin, report, shots);
  await signIn(admin, "admin", password);
  report.admin_sees_users_link = await admin.isVisible("a[data-nav=users]");
  report.admin_signed_in_as = await admin.textContent("#signed-in-as");
  await admin.click("a[data-nav=users]");
  await admin.waitForSelector("#user-form");
  await admin.fill("#u-name", "olga");
  await admin.selectOption("#u-role", "operator");
  await admin.fill("#u-password", "olga-password");
  await admin.click("#user-form button[type=submit]");
  await admin.waitForSelector("#users tr[data-user=olga]");
  report.listed = await admin.$$eval("#users tr", (rows) => rows.map((r) => [...r.cells].slice(0, 3).map((c) => c.textContent)));
  await shot("users");
  step("admin made an operator");
  await admin.click("a[data-nav=audit]");
  await admin.waitForSelector("#audit tr[data-audit]");
  report.audit_newest = await admin.$eval("#audit tr[data-audit]", (r) => [...r.cells].slice(1, 4).map((c) => c.textContent));
  await shot("audit");

  const operatorContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const operator = await operatorContext.newPage();
  watchPage(operator, report, shots);
  await signIn(operator, "olga", "olga-password");
  report.operator_signed_in_as = await operator.textContent("#signed-in-as");
  report.operator_sees_users_link = await operator.isVisible("a[data-nav=users]");
  report.operator_sees_audit_link = await operator.isVisible("a[data-nav=audit]");
  await operator.goto(`${base}/console/#/users`);
  await operator.waitForSelector("#users-denied");
  report.operator_user_form = (await operator.$("#user-form")) !== null;
  await operator.click("a[data-nav=system]");
  await operator.waitForSelector("#host");
  report.operator_token_form = (await operator.$("#token-form")) !== null;
  report.operator_api = await operator.evaluate(async () => {
    const csrf = (await (await fetch("/console/api/session")).json()).csrf_token;
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf };
    const list = await fetch("/api/v1/users");
    const make = await fetch("/api/v1/users", { method: "POST", headers, body: JSON.stringify({ name: "eve", role: "admin", password: "eve-password" }) });
    return { list: list.status, create: make.status };
  });
  await operator.screenshot({ path: `${shots}/users-operator.png`, fullPage: true });
  step("operator kept out of users");

  // The admin disables olga: her open console is signed out at its next request.
  await admin.click("a[data-nav=users]");
  await admin.waitForSelector("#users tr[data-user=olga]");
  await admin.click('[aria-label="Disable olga"]');
  await admin.waitForSelector("#confirm[open]");
  await admin.click("#confirm-ok");
  await admin.waitForFunction(() => document.querySelector("#users tr[data-user=olga]")?.cells[2]?.textContent === "disabled");
  await operator.click("a[data-nav=dashboard]");
  await operator.waitForSelector("#password");
  report.operator_signed_out = true;
  step("disabled operator signed out");
} catch (e) {
  report.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
