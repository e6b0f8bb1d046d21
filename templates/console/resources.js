/* Resources: list (GET /api/v1/resources) and create (POST). */
"use strict";
(() => {
  const {$, esc} = WW;
  async function load() {
    try {
      const rows = await WW.api("/api/v1/resources");
      WC.fill("resources", rows, [["Title", (r) => esc(r.title)], ["Kind", (r) => esc(r.kind)],
        ["Topics", (r) => esc((r.topics || []).join(", ") || "—")], ["Address", (r) => `<a href="${esc(r.url)}">${esc(r.url)}</a>`],
        ["Id", (r) => `<code>${esc(r.id)}</code>`]], "No resource yet.");
      $("status").textContent = `${rows.length} resources`;
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }
  document.addEventListener("DOMContentLoaded", () => {
    WC.onSubmit("new-resource", "save-status", async (f, form) => {
      const saved = await WW.api("/api/v1/resources", {json: {...f, topics: WC.list(f.topics)}});
      form.reset(); load();
      return `Saved “${saved.title}”.`;
    });
    load();
  });
})();
