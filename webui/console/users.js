// The users page: console users with their roles, made, disabled and given
// new passwords by an admin. Anyone else sees why there is nothing to do here
// (the API answers them 403 anyway).
import { api, session } from "./api.js";
import { h, replace, toast, confirmDialog } from "./dom.js";

const enc = encodeURIComponent;
const ROLES = ["viewer", "operator", "admin"];

export function usersPage(main) {
  if (session.role !== "admin") {
    replace(main, h("h1", {}, "Users"), h("p", { class: "muted", id: "users-denied" }, "Only an admin manages console users."));
    return () => {};
  }
  const rows = h("tbody", { id: "users" });
  const name = h("input", { id: "u-name", required: true, placeholder: "olga", autocomplete: "off", pattern: "[a-z0-9][a-z0-9_\\-]{0,31}" });
  const role = h("select", { id: "u-role" }, ROLES.map((r) => h("option", { value: r }, r)));
  const password = h("input", { id: "u-password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const out = h("div", { id: "user-result", role: "status" });
  const form = h("form", { class: "row", id: "user-form" },
    h("label", { for: "u-name" }, "Name"), name, h("label", { for: "u-role" }, "Role"), role,
    h("label", { for: "u-password" }, "Password"), password, h("button", { type: "submit" }, "Create user"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const created = await api.post("/users", { name: name.value.trim(), role: role.value, password: password.value });
      replace(out, h("p", {}, `User ${created.name} created (${created.role}).`));
      name.value = password.value = "";
      await load();
    } catch (err) { replace(out, h("p", { class: "form-error" }, err.message)); }
  });

  const resetPassword = async (user) => {
    const fresh = window.prompt(`New password for ${user.name} (8 characters or more). Their console sessions end.`);
    if (!fresh) return;
    try { await api.put(`/users/${enc(user.name)}/password`, { password: fresh }); toast(`Password of ${user.name} reset`); } catch (e) { toast(e.message); }
  };
  const setDisabled = async (user, disabled) => {
    const text = disabled ? `Disable ${user.name}? Their console sessions end at once.` : `Enable ${user.name}?`;
    if (!(await confirmDialog(text, disabled ? "Disable" : "Enable"))) return;
    try { await api.patch(`/users/${enc(user.name)}`, { disabled }); toast(`${user.name} ${disabled ? "disabled" : "enabled"}`); } catch (e) { toast(e.message); }
    load();
  };
  const row = (user) => h("tr", { "data-user": user.name },
    h("td", {}, user.name), h("td", {}, user.role), h("td", {}, user.builtin ? "built-in" : user.disabled ? "disabled" : "active"),
    h("td", {}, h("button", { type: "button", class: "ghost", "aria-label": `Reset the password of ${user.name}`, onclick: () => resetPassword(user) }, "Reset password"),
      user.builtin ? null : h("button", { type: "button", class: "ghost", "aria-label": `${user.disabled ? "Enable" : "Disable"} ${user.name}`,
        onclick: () => setDisabled(user, !user.disabled) }, user.disabled ? "Enable" : "Disable")));
  const load = async () => {
    const page = await api.get("/users?limit=500");
    replace(rows, page.items.map(row));
  };
  replace(main, h("h1", {}, "Users"),
    h("section", { class: "panel", "aria-labelledby": "users-h" }, h("h2", { id: "users-h" }, "Console users"), form, out,
      h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Role", "Status", ""].map((t) => h("th", { scope: "col" }, t)))), rows)));
  load().catch((e) => toast(e.message));
  return () => {};
}
