/* The audit log (GET /api/v1/audit): filters in the address, older pages on demand. */
"use strict";
(() => {
  const {$, esc} = WW;
  let cursor = null;

  function query() {
    const q = new URLSearchParams();
    for (const [id, name] of [["f-actor", "actor"], ["f-kind", "object_kind"], ["f-action", "action"]]) {
      if ($(id).value.trim()) q.set(name, $(id).value.trim());
    }
    if ($("f-since").value) q.set("since", $("f-since").value + "T00:00:00Z");
    if ($("f-until").value) q.set("until", $("f-until").value + "T23:59:59Z");
    return q;
  }

  function row(e) {
    const who = e.actor_kind === "account" ? e.actor : `${e.actor_kind}: ${e.actor}`;
    return `<tr><td>${esc(new Date(e.at).toLocaleString())}</td><td>${esc(who)}</td><td>${esc(e.action)}</td>
      <td>${esc(e.object_kind)}</td><td>${esc(e.object_id || "—")}</td></tr>`;
  }

  async function load(more) {
    const q = query();
    if (more && cursor) q.set("cursor", cursor);
    try {
      const page = await WW.api("/api/v1/audit?" + q.toString());
      const body = $("audit").tBodies[0], html = page.entries.map(row).join("");
      body.innerHTML = more ? body.innerHTML + html : (html || '<tr><td colspan="5" class="empty">No change matches.</td></tr>');
      cursor = page.next_cursor;
      $("more").hidden = !cursor;
      $("status").textContent = `${body.rows.length} changes shown · updated ${new Date().toLocaleTimeString()}`;
    } catch (err) { $("status").textContent = "Could not load the audit log: " + err.message; }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
    $("more").addEventListener("click", () => load(true));
    load(false);
  });
})();
