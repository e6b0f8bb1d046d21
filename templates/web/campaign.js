/* Staff: one campaign — status, progress, schedule, cancel, content test, credits, toolkit links. */
"use strict";
(() => {
  const {$, esc, fmt, fmt1} = WW;
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const base = `/api/v1/campaigns/${encodeURIComponent(id)}`;
  let campaign = null;
  const DONE = {cancel: "Campaign cancelled.", schedule: "Campaign scheduled.", pause: "Campaign paused.", resume: "Campaign resumed."};

  function localInput(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }

  function render(c) {
    campaign = c;
    document.title = `WINWIN — ${c.name}`;
    $("facts").innerHTML = [["Name", esc(c.name)], ["Status", `<span class="pill ${esc(c.status)}" id="campaign-status">${esc(c.status)}</span>`],
      ["Channel", esc(c.channel)], ["Send at", c.send_at ? esc(new Date(c.send_at).toLocaleString()) : "not scheduled"],
      ["Template", esc(c.template_id)], ["Audience", c.audience_id ? `<a href="/audiences">${esc(c.audience_id)}</a>` : c.channel === "email" ? (c.audience ? "a filter" : "everyone with consent") : "—"], ["Resources", esc((c.resources || []).join(", ") || "—")],
      ["Messengers", esc((c.messengers || []).join(", ") || "—")], ["Id", `<code>${esc(c.id)}</code>`]]
      .map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
    const p = c.progress, done = (p.sent || 0) + (p.suppressed || 0) + (p.failed || 0), pct = p.total ? Math.round((100 * done) / p.total) : 0;
    $("bar").innerHTML = `<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}" aria-label="${pct}% processed"><i style="width:${pct}%"></i></div><p class="status">${pct}% processed</p>`;
    for (const k of ["total", "sent", "suppressed", "failed"]) $("p-" + k).textContent = fmt(p[k]);
    if ($("schedule")) {  // not on the page for a role that may not change campaigns
      const open = c.status === "draft" || c.status === "scheduled";
      $("schedule").disabled = !open;
      $("cancel").disabled = c.status === "sent" || c.status === "cancelled";
      $("pause").disabled = !(c.status === "scheduled" || c.status === "sending");
      $("resume").disabled = c.status !== "paused";
      if (document.activeElement !== $("send-at") && !$("send-at").value) $("send-at").value = localInput(c.send_at);
    }
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
    contentTest(c.content_test);
  }

  /* The content test: its variants and, once decided, the figures and the chosen one. */
  function contentTest(t) {
    if (!t) { $("content-test").innerHTML = '<p class="empty">No content test: everyone gets the template.</p>'; return; }
    const d = t.decision, pct = (x) => x == null ? "—" : (100 * x).toFixed(1) + "%";
    const figures = d ? Object.fromEntries(d.variants.map((v) => [v.variant, v])) : {};
    const head = `<p>${esc(pct(t.test_share))} of the audience tests ${t.variants.length} variants on <b>${esc(t.metric)}</b>; decision at ${esc(new Date(t.decide_at).toLocaleString())}.</p>`;
    const verdict = d ? `<p class="status" id="decision"><b>${esc(d.result)}</b>: the rest of the audience gets variant ${esc(d.chosen)} (decided ${esc(new Date(d.decided_at).toLocaleString())}).</p>`
      : '<p class="status" id="decision">Not decided yet: the rest of the audience waits for the decision time.</p>';
    const rows = t.variants.map((v) => { const f = figures[v.variant] || {}; return `<tr><th scope="row">${esc(v.variant)}${d && d.chosen === v.variant ? " ✓" : ""}</th>
      <td>${esc(v.template_id || "the campaign's")}</td><td>${esc(v.subject || "the template's")}</td><td class="n">${d ? fmt(f.people) : "—"}</td><td class="n">${d ? fmt(f.converters) : "—"}</td><td class="n">${d ? pct(f.rate) : "—"}</td></tr>`; }).join("");
    const tests = d ? d.comparisons.map((x) => `${esc(x.variant)} vs ${esc(x.against)}: p = ${x.p_value == null ? "—" : x.p_value.toPrecision(2)}, Holm ${x.p_holm == null ? "—" : x.p_holm.toPrecision(2)}`).join("; ") : "";
    $("content-test").innerHTML = head + verdict + `<div class="scroll"><table><thead><tr><th scope="col">Variant</th><th scope="col">Template</th><th scope="col">Subject</th><th class="n" scope="col">People</th><th class="n" scope="col">Converted</th><th class="n" scope="col">Rate</th></tr></thead><tbody>${rows}</tbody></table></div>` + (tests ? `<p class="status">${tests} (α = 0.05)</p>` : "");
  }

  async function load() {
    try { render(await WW.api(base)); } catch (err) { $("status").textContent = err.status === 404 ? "No such campaign." : "Could not load: " + err.message; }
  }

  async function credits() {
    try {
      const q = new URLSearchParams({period: "month", model: $("model").value, window_days: $("window").value || "30"});
      const rows = await WW.api(`${base}/attribution?${q}`);
      $("credits").tBodies[0].innerHTML = rows.length ? rows.map((r) => `<tr><td>${esc(r.period)}</td><td>${esc(r.stage)}</td><td class="n">${fmt1(r.credited)}</td><td class="n">${fmt(r.people)}</td><td class="n">${fmt(r.events)}</td></tr>`).join("")
        : '<tr><td colspan="5" class="empty">Nothing credited yet.</td></tr>';
    } catch (err) { $("credits").tBodies[0].innerHTML = `<tr><td colspan="5" class="error">${esc(err.message)}</td></tr>`; }
  }

  async function toolkits() {
    if (campaign && campaign.channel !== "toolkit") {
      $("toolkits").innerHTML = `<p class="empty">Toolkit links are for toolkit campaigns; this one is ${esc(campaign.channel)}.</p>`;
      return;
    }
    let list;
    try { list = await WW.api(`${base}/toolkits`); } catch (err) {
      $("toolkits").innerHTML = err.status === 404 || err.status === 405
        ? '<p class="empty">No toolkit links for this campaign (toolkit campaigns only, or toolkits are not available on this server yet).</p>'
        : `<p class="error">Could not load toolkits: ${esc(err.message)}</p>`;
      return;
    }
    if (!Array.isArray(list) || !list.length) { $("toolkits").innerHTML = '<p class="empty">No messenger toolkit yet.</p>'; return; }
    $("toolkits").innerHTML = `<div class="scroll"><table><thead><tr><th scope="col">Messenger</th><th scope="col">Toolkit page</th><th scope="col">Resource links</th></tr></thead><tbody>${list.map((t) => `<tr>
      <th scope="row">${esc(t.messenger_id)}</th><td><a href="${esc(t.url)}">${esc(t.url)}</a> · <a href="${base}/toolkits/${encodeURIComponent(t.messenger_id)}/zip" download>ZIP for ${esc(t.messenger_id)}</a></td>
      <td>${(t.links || []).map((l) => `<div>${esc(l.resource_id)}: <a href="${esc(l.url)}">link</a>${l.qr_svg_url ? ` · <a href="${esc(l.qr_svg_url)}">QR (SVG)</a>` : ""}${l.qr_png_url ? ` · <a href="${esc(l.qr_png_url)}">QR (PNG)</a>` : ""}</div>`).join("") || "—"}</td></tr>`).join("")}</tbody></table></div>`;
  }

  async function act(path, body) {
    $("action-status").textContent = "working…";
    try {
      render(await WW.api(`${base}/${path}`, {json: body}));
      $("action-status").textContent = DONE[path];
    } catch (err) { $("action-status").textContent = "Refused: " + err.message; }
  }

  function wireActions() {
    $("schedule-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = $("send-at").value;
      act("schedule", v ? {send_at: new Date(v).toISOString()} : {});
    });
    $("cancel").addEventListener("click", () => { if (confirm(`Cancel “${campaign ? campaign.name : id}”? Emails not yet sent will not be sent.`)) act("cancel", {}); });
    $("pause").addEventListener("click", () => act("pause", {}));
    $("resume").addEventListener("click", () => act("resume", {}));
    $("clone").addEventListener("click", async () => {
      try { const copy = await WW.api(`${base}/clone`, {method: "POST"}); location.href = `/campaigns/${encodeURIComponent(copy.id)}`; }
      catch (err) { $("action-status").textContent = "Refused: " + err.message; }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if ($("schedule-form")) wireActions();
    $("credit-form").addEventListener("submit", (e) => { e.preventDefault(); credits(); });
    load().then(toolkits); credits();
    setInterval(load, 3000);
  });
})();
