// The console's entry: checks the session, then routes `#/...` to a page.
// Plain ES modules and one style sheet, no build step: every file is embedded
// in the appliance binary as written here.
import { currentSession, session, signOut } from "./api.js";
import { toast } from "./dom.js";
import { signInPage, dashboardPage, channelPage, formPage, systemPage } from "./pages.js";
import { usersPage } from "./users.js";
import { auditPage } from "./audit.js";
import { recordingPage, recordingsPage } from "./recordings.js";

const main = document.getElementById("main");
const top = document.getElementById("top");
let leave = () => {};

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "channels" && parts[1] && parts[2] === "edit") return ["dashboard", () => formPage(main, parts[1])];
  if (parts[0] === "channels" && parts[1] && parts[2] === "recordings" && parts[3]) return ["recordings", () => recordingPage(main, parts[1], parts[3])];
  if (parts[0] === "channels" && parts[1]) return ["dashboard", () => channelPage(main, parts[1])];
  if (parts[0] === "new") return ["new", () => formPage(main, null)];
  if (parts[0] === "system") return ["system", () => systemPage(main)];
  if (parts[0] === "users") return ["users", () => usersPage(main)];
  if (parts[0] === "audit") return ["audit", () => auditPage(main)];
  if (parts[0] === "recordings") return ["recordings", () => recordingsPage(main)];
  return ["dashboard", () => dashboardPage(main)];
}

function show() {
  leave();
  const [nav, page] = route();
  for (const a of top.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  top.hidden = false;
  // Users and the audit log are an admin's business: their links are shown to admins only.
  for (const page of ["users", "audit"]) top.querySelector(`[data-nav=${page}]`).hidden = session.role !== "admin";
  document.getElementById("signed-in-as").textContent = session.user ? `${session.user} (${session.role})` : "";
  leave = page() || (() => {});
  main.focus({ preventScroll: true });
}

function showSignIn() {
  leave();
  top.hidden = true;
  leave = signInPage(main, () => { window.addEventListener("hashchange", show); show(); });
  window.removeEventListener("hashchange", show);
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try { await signOut(); } catch (e) { toast(`Sign-out failed: ${e.message}`); return; }
  showSignIn();
});
window.addEventListener("signed-out", showSignIn);

if (await currentSession()) {
  window.addEventListener("hashchange", show);
  show();
} else showSignIn();
