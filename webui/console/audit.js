// The audit page (admins): who changed what and when, newest first. The log
// is listed oldest first by the API: walk to its end, keep the latest 200.
import { api, session } from "./api.js";
import { h, replace, toast } from "./dom.js";

const KEEP = 200;

export function auditPage(main) {
  if (session.role !== "admin") {
    replace(main, h("h1", {}, "Audit log"), h("p", { class: "muted", id: "audit-denied" }, "Only an admin reads the audit log."));
    return () => {};
  }
  const rows = h("tbody", { id: "audit" });
  replace(main, h("h1", {}, "Audit log"),
    h("section", { class: "panel", "aria-labelledby": "audit-h" }, h("h2", { id: "audit-h" }, "Who changed what"),
      h("table", {}, h("thead", {}, h("tr", {}, ["Time", "Who", "What", "Target", "Detail"].map((t) => h("th", { scope: "col" }, t)))), rows)));
  (async () => {
    let latest = [];
    let cursor = null;
    for (;;) {
      const page = await api.get(`/audit?limit=500${cursor === null ? "" : `&cursor=${cursor}`}`);
      latest = latest.concat(page.items).slice(-KEEP);
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    const items = latest.reverse();
    replace(rows, items.length ? items.map((e) => h("tr", { "data-audit": e.sequence },
      h("td", {}, new Date(e.at).toLocaleString()), h("td", { class: "mono" }, e.actor), h("td", {}, e.action),
      h("td", { class: "mono" }, e.target), h("td", {}, e.detail || "")))
      : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "Nothing changed yet.")));
  })().catch((e) => toast(e.message));
  return () => {};
}
