/* Resources: list (GET /api/v1/resources), create and edit (POST: the same id updates). */
"use strict";
(() => {
  const {$, esc} = WW;
  let all = [];
  const edits = () => !!$("new-resource");
  async function load() {
    try {
      all = await WW.api("/api/v1/resources");
      const cols = [["Title", (r) => esc(r.title)], ["Kind", (r) => esc(r.kind)],
        ["Topics", (r) => esc((r.topics || []).join(", ") || "—")], ["Address", (r) => `<a href="${esc(r.url)}">${esc(r.url)}</a>`],
        ["Id", (r) => `<code>${esc(r.id)}</code>`]];
      if (edits()) cols.push(["Actions", (r) => `<button type="button" class="act" data-edit="${esc(r.id)}">Edit ${esc(r.title)}</button>`]);
      WC.fill("resources", all, cols, "No resource yet.");
      $("status").textContent = `${all.length} resources`;
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }
  function edit(r) {
    $("r-title").value = r.title; $("r-url").value = r.url; $("r-kind").value = r.kind;
    $("r-topics").value = (r.topics || []).join(", "); $("r-id").value = r.id; $("r-id").readOnly = true;
    $("h-new").textContent = `Edit “${r.title}”`;
    $("r-title").focus();
  }
  function fresh(form) { form.reset(); $("r-id").readOnly = false; $("h-new").textContent = "New resource"; }
  document.addEventListener("DOMContentLoaded", () => {
    WC.onSubmit("new-resource", "save-status", async (f, form) => {
      const saved = await WW.api("/api/v1/resources", {json: {...f, topics: WC.list(f.topics)}});
      fresh(form); load();
      return `Saved “${saved.title}”.`;
    });
    document.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-edit]");
      const r = b && all.find((x) => x.id === b.dataset.edit);
      if (r) edit(r);
    });
    load();
  });
})();
