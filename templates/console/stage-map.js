/* The stage map (GET /api/v1/stage-map; admins PUT it) and what its recomputation changed. */
"use strict";
(() => {
  const {$, esc, fmt} = WW;
  const lines = (text) => (text || "").split(/[\n,]/).map((s) => s.trim()).filter(Boolean);

  function show(map) { for (const s of WW.STAGES) $("m-" + s).value = (map[s] || []).join("\n"); }

  async function load() {
    try { show(await WW.api("/api/v1/stage-map")); $("status").textContent = "The map in use."; }
    catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }

  function changed(r) {
    WC.fill("changes", WW.STAGES.map((s) => ({stage: s, ...r.changes[s]})), [["Stage", (c) => esc(c.stage)],
      ["Added", (c) => esc(c.added.join(", ") || "—")], ["Removed", (c) => esc(c.removed.join(", ") || "—")],
      ["Before", (c) => fmt(c.people_before)], ["After", (c) => fmt(c.people_after)]]);
    for (const td of $("changes").querySelectorAll("tbody td:nth-child(n+4)")) td.className = "n";
    const n = r.recomputed;
    $("recomputed").textContent = `${fmt(n.events)} events re-staged, ${fmt(n.stage_facts)} stage facts, ${fmt(n.credits_deleted)} credits deleted, ${fmt(n.events_attributed)} events attributed.`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    WC.onSubmit("stage-map", "status", async () => {
      const map = Object.fromEntries(WW.STAGES.map((s) => [s, lines($("m-" + s).value)]));
      const r = await WW.api("/api/v1/stage-map", {method: "PUT", json: map});
      show(r); changed(r);
      return "Saved; every count was recomputed.";
    });
    load();
  });
})();
