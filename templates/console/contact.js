/* One contact: facts, consent history, stages by month, touches, recommendations, journeys. */
"use strict";
(() => {
  const {$, esc} = WW;
  const when = (iso) => esc(new Date(iso).toLocaleString());

  async function load() {
    const id = $("contact").dataset.id, base = `/api/v1/contacts/${encodeURIComponent(id)}`;
    let c;
    try { c = await WW.api(base); } catch (err) { $("status").textContent = err.status === 404 ? "No such contact." : "Could not load: " + err.message; return; }
    $("facts").innerHTML = [["Name", c.name], ["Email", c.email], ["Role", c.role], ["Language", c.language], ["Email consent", c.consent.email],
      ["Needs", (c.needs || []).join(", ")], ["Tags", (c.tags || []).join(", ")]].map(([k, v]) => `<dt>${k}</dt><dd>${esc(v || "—")}</dd>`).join("");
    WC.fill("consent", c.consent_history, [["When", (r) => when(r.at)], ["Channel", (r) => esc(r.channel)], ["Status", (r) => esc(r.status)], ["Through", (r) => esc(r.source)]], "No consent change yet.");
    WC.fill("stages", c.stages_by_month, [["Month", (r) => esc(r.month)], ["Stages", (r) => esc(r.stages.join(", "))]], "No stage reached yet.");
    WC.fill("touches", c.touches, [["When", (r) => when(r.at)], ["Campaign", (r) => `<a href="/campaigns/${encodeURIComponent(r.campaign_id)}">${esc(r.campaign_id)}</a>`],
      ["Kind", (r) => esc(r.kind)], ["Channel", (r) => esc(r.channel || "—")], ["Messenger", (r) => esc(r.messenger_id || "—")]], "No touch yet.");
    WC.fill("journeys", c.journeys, [["Journey", (r) => esc(r.journey_id)], ["State", (r) => esc(r.state)], ["Due", (r) => when(r.due_at)]], "In no journey.");
    $("status").textContent = "";
    try {
      const recs = await WW.api(`${base}/recommendations`);
      WC.fill("recs", recs, [["Resource", (r) => esc(r.title)], ["Why", (r) => esc(r.reason)]], "No recommendation.");
    } catch (err) { WC.fill("recs", [], [["", () => ""], ["", () => ""]], "Could not load: " + err.message); }
  }

  document.addEventListener("DOMContentLoaded", load);
})();
