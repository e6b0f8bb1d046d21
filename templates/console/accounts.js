/* Accounts (admins): accounts and service tokens; a new password or secret is shown once. */
"use strict";
(() => {
  const {$, esc} = WW;
  const when = (iso) => (iso ? esc(new Date(iso).toLocaleString()) : "—");
  const once = (what, value) => `<p class="shown-once">${esc(what)} (shown once, copy it now): <code>${esc(value)}</code></p>`;

  async function load() {
    try {
      const [people, tokens] = await Promise.all([WW.api("/api/v1/accounts"), WW.api("/api/v1/tokens")]);
      WC.fill("accounts", people, [["Email", (a) => esc(a.email)], ["Role", (a) => esc(a.role)], ["Created", (a) => when(a.created_at)],
        ["State", (a) => (a.disabled_at ? "disabled" : "active")],
        ["Action", (a) => (a.disabled_at ? "—" : `<button type="button" class="act danger" data-disable="${esc(a.email)}">Disable ${esc(a.email)}</button>`)]]);
      WC.fill("tokens", tokens, [["Name", (t) => esc(t.name)], ["Role", (t) => esc(t.role)], ["Created by", (t) => esc(t.created_by)],
        ["State", (t) => (t.revoked_at ? "revoked" : "live")],
        ["Action", (t) => (t.revoked_at ? "—" : `<button type="button" class="act danger" data-revoke="${esc(t.id)}">Revoke ${esc(t.name)}</button>`)]], "No service token yet.");
      $("status").textContent = `${people.length} accounts, ${tokens.length} service tokens`;
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }

  async function act(path, what) {
    try { await WW.api(path, {method: "DELETE"}); $("status").textContent = what; } catch (err) { $("status").textContent = "Refused: " + err.message; }
    load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    WC.onSubmit("new-account", "account-made", async (f, form) => {
      const made = await WW.api("/api/v1/accounts", {json: f});
      form.reset(); load();
      $("account-made").innerHTML = `<p>Created ${esc(made.email)} (${esc(made.role)}).</p>` + once("Password", made.password);
      return null;
    });
    WC.onSubmit("new-token", "token-made", async (f, form) => {
      const made = await WW.api("/api/v1/tokens", {json: f});
      form.reset(); load();
      $("token-made").innerHTML = `<p>Created token “${esc(made.name)}”.</p>` + once("Secret", made.token);
      return null;
    });
    document.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-disable], button[data-revoke]");
      if (!b) return;
      if (b.dataset.disable && confirm(`Disable ${b.dataset.disable}? Their sessions end now.`)) act(`/api/v1/accounts/${encodeURIComponent(b.dataset.disable)}`, "Account disabled.");
      if (b.dataset.revoke && confirm("Revoke this token? Machines using it stop working now.")) act(`/api/v1/tokens/${encodeURIComponent(b.dataset.revoke)}`, "Token revoked.");
    });
    load();
  });
})();
