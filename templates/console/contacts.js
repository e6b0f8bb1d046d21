/* Contacts: search by external id, name or email, a page of 50 at a time. */
"use strict";
(() => {
  const {$, esc} = WW;
  const PAGE = 50;
  let offset = 0;

  async function load() {
    const q = new URLSearchParams({q: $("q").value.trim(), limit: String(PAGE + 1), offset: String(offset)});
    try {
      const rows = await WW.api("/api/v1/contacts?" + q.toString());
      const shown = rows.slice(0, PAGE);
      WC.fill("contacts", shown, [["External id", (r) => `<a href="/contacts/${encodeURIComponent(r.external_id)}">${esc(r.external_id)}</a>`],
        ["Name", (r) => esc(r.name || "—")], ["Email", (r) => esc(r.email || "—")], ["Role", (r) => esc(r.role || "—")],
        ["Language", (r) => esc(r.language || "—")], ["Email consent", (r) => esc(r.consent.email)]], "No contact matches.");
      $("prev").disabled = offset === 0; $("next").disabled = rows.length <= PAGE;
      $("status").textContent = shown.length ? `Contacts ${offset + 1}–${offset + shown.length}` : "No contact matches.";
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("search").addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
    $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
    $("next").addEventListener("click", () => { offset += PAGE; load(); });
    load();
  });
})();
