/* Messengers: list (GET /api/v1/messengers) and create (POST). */
"use strict";
(() => {
  const {$, esc} = WW;
  async function load() {
    try {
      const rows = await WW.api("/api/v1/messengers");
      WC.fill("messengers", rows, [["Name", (r) => esc(r.name)], ["Role", (r) => esc(r.role)], ["Id", (r) => `<code>${esc(r.id)}</code>`]], "No messenger yet.");
      $("status").textContent = `${rows.length} messengers`;
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }
  document.addEventListener("DOMContentLoaded", () => {
    WC.onSubmit("new-messenger", "save-status", async (f, form) => {
      const saved = await WW.api("/api/v1/messengers", {json: f});
      form.reset(); load();
      return `Saved “${saved.name}”.`;
    });
    load();
  });
})();
