/* Journeys: list with counts, switch on/off, simulate a past range, create and edit. */
"use strict";
(() => {
  const {$, esc, fmt} = WW;
  const COUNTS = ["triggered", "waiting", "acted", "exited", "skipped_consent", "skipped_cap"];
  let journeys = [];

  const trigger = (t) => [t.types && t.types.length ? `events ${t.types.join(", ")}` : "", t.stage ? `reached ${t.stage}` : "",
    t.topic ? `topic ${t.topic}` : "", t.campaign_id ? `campaign ${t.campaign_id}` : ""].filter(Boolean).join(" · ");
  const action = (a) => (a.channel === "email" ? `email ${a.template_id}` : `messenger ${a.messenger_id}`);

  async function load() {
    try {
      journeys = await WW.api("/api/v1/journeys");
      const changes = $("journeys").dataset.changes === "yes";
      WC.fill("journeys", journeys, [["Name", (j) => esc(j.name)], ["Trigger", (j) => esc(trigger(j.trigger))],
        ["Delay", (j) => esc(j.delay)], ["Action", (j) => esc(action(j.action))], ["On", (j) => (j.enabled ? "on" : "off")],
        ...["triggered", "waiting", "acted", "exited"].map((k) => [k, (j) => fmt(j.stats[k])]),
        ["Change", (j) => (changes ? `<button class="act" type="button" data-edit="${esc(j.id)}">Edit ${esc(j.name)}</button>
          <button class="act" type="button" data-switch="${esc(j.id)}" data-on="${j.enabled ? "off" : "on"}">Switch ${j.enabled ? "off" : "on"} ${esc(j.name)}</button>` : "—")]],
        "No journey yet.");
      for (const td of $("journeys").querySelectorAll("tbody td:nth-child(n+6):nth-child(-n+9)")) td.className = "n";
      if ($("s-journey")) $("s-journey").innerHTML = journeys.map((j) => `<option value="${esc(j.id)}">${esc(j.name)}</option>`).join("");
      $("status").textContent = `${journeys.length} journeys`;
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }

  async function choices() {
    if (!$("journey-form")) return;
    const [templates, messengers] = await Promise.all([WW.api("/api/v1/templates").catch(() => []), WW.api("/api/v1/messengers").catch(() => [])]);
    $("j-template").innerHTML = templates.filter((t) => t.channel === "email").map((t) => `<option value="${esc(t.id)}">${esc(t.name)}</option>`).join("");
    $("j-messenger").innerHTML = messengers.map((m) => `<option value="${esc(m.id)}">${esc(m.name)}</option>`).join("");
  }

  function body(f) {
    const t = {};
    if (WC.list(f.types).length) t.types = WC.list(f.types);
    if (f.stage) t.stage = f.stage;
    if (f.topic) t.topic = f.topic;
    const act = f.channel === "email" ? {channel: "email", template_id: f.template_id} : {channel: "messenger", messenger_id: f.messenger_id};
    return {name: f.name, trigger: t, delay: `P${Number(f.delay || 0)}D`, exit: f.exit ? {reached_stage: f.exit} : null,
      action: act, enabled: f.enabled === "yes"};
  }

  function edit(j) {
    $("j-id").value = j.id; $("j-name").value = j.name;
    $("j-types").value = (j.trigger.types || []).join(", "); $("j-stage").value = j.trigger.stage || ""; $("j-topic").value = j.trigger.topic || "";
    const days = /^P(\d+)D$/.exec(j.delay); $("j-delay").value = days ? days[1] : 0;
    $("j-exit").value = (j.exit || {}).reached_stage || ""; $("j-channel").value = j.action.channel;
    if (j.action.template_id) $("j-template").value = j.action.template_id;
    if (j.action.messenger_id) $("j-messenger").value = j.action.messenger_id;
    $("j-enabled").value = j.enabled ? "yes" : "no";
    $("h-edit").firstChild.textContent = `Edit “${j.name}” `; $("j-name").focus();
  }

  function fresh() { $("journey-form").reset(); $("j-id").value = ""; $("h-edit").firstChild.textContent = "New journey "; }

  document.addEventListener("DOMContentLoaded", () => {
    $("journeys").addEventListener("click", async (e) => {
      const b = e.target.closest("button");
      if (!b) return;
      if (b.dataset.edit) { edit(journeys.find((j) => j.id === b.dataset.edit)); return; }
      try {
        const j = await WW.api(`/api/v1/journeys/${encodeURIComponent(b.dataset.switch)}/${b.dataset.on}`, {method: "POST"});
        $("switch-status").textContent = `“${j.name}” is ${j.enabled ? "on" : "off"}.`; load();
      } catch (err) { $("switch-status").textContent = "Refused: " + err.message; }
    });
    if ($("simulate")) $("simulate").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = WC.fields($("simulate"));
      $("sim-status").textContent = "simulating…";
      try {
        const r = await WW.api(`/api/v1/journeys/${encodeURIComponent(f.journey)}/simulate`, {json: {from: f.from, to: f.to}});
        $("sim-counts").innerHTML = COUNTS.map((k) => `<div class="kpi"><b>${fmt(r[k])}</b><span>${esc(k.replace("_", " "))}</span></div>`).join("");
        $("sim-status").textContent = `Simulated ${f.from} to ${f.to}: ${fmt(r.acted)} would have acted.`;
      } catch (err) { $("sim-status").textContent = "Refused: " + err.message; }
    });
    if ($("journey-form")) {
      $("j-new").addEventListener("click", fresh);
      WC.onSubmit("journey-form", "save-status", async (f) => {
        const id = $("j-id").value;
        const saved = await WW.api(id ? `/api/v1/journeys/${encodeURIComponent(id)}` : "/api/v1/journeys", {method: id ? "PUT" : "POST", json: body(f)});
        fresh(); load();
        return `Saved “${saved.name}” (${saved.enabled ? "on" : "off"}).`;
      });
    }
    const today = new Date().toISOString().slice(0, 10), before = new Date(Date.now() - 90 * 864e5).toISOString().slice(0, 10);
    if ($("simulate")) { $("s-from").value = before; $("s-to").value = today; }
    load(); choices();
  });
})();
