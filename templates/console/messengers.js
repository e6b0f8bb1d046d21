/* Messengers: list (GET /api/v1/messengers), create and edit (POST: the same id updates). */
"use strict";
(() => {
  const {$, esc} = WW;
  let all = [];
  const edits = () => !!$("new-messenger");
  async function load() {
    try {
      all = await WW.api("/api/v1/messengers");
      const cols = [["Name", (r) => esc(r.name)], ["Role", (r) => esc(r.role)], ["Id", (r) => `<code>${esc(r.id)}</code>`]];
      if (edits()) cols.push(["Actions", (r) => `<button type="button" class="act" data-edit="${esc(r.id)}">Edit ${esc(r.name)}</button>`]);
      WC.fill("messengers", all, cols, "No messenger yet.");
      $("status").textContent = `${all.length} messengers`;
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }
  function edit(m) {
    $("m-name").value = m.name; $("m-role").value = m.role; $("m-id").value = m.id; $("m-id").readOnly = true;
    $("h-new").textContent = `Edit “${m.name}”`;
    $("m-name").focus();
  }
  function fresh(form) { form.reset(); $("m-id").readOnly = false; $("h-new").textContent = "New messenger"; }
  document.addEventListener("DOMContentLoaded", () => {
    WC.onSubmit("new-messenger", "save-status", async (f, form) => {
      const saved = await WW.api("/api/v1/messengers", {json: f});
      fresh(form); load();
      return `Saved “${saved.name}”.`;
    });
    document.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-edit]");
      const m = b && all.find((x) => x.id === b.dataset.edit);
      if (m) edit(m);
    });
    load();
  });
})();
