/* A guided campaign form per channel: template, audience or platforms or messengers,
   resources, previews (per language, per platform with its character count, per
   messenger), a test send, then create (POST /api/v1/campaigns) and schedule. */
"use strict";
(() => {
  const {$, esc} = WW;
  const LIMITS = {x: 280, linkedin: 3000, facebook: 63206, instagram: 2200};
  let templates = [], timer = null;

  const channel = () => $("c-channel").value;
  const checked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
  const boxes = (rows, name, label) => rows.map((r) => `<label><input type="checkbox" name="${name}" value="${esc(r.id)}"> ${esc(label(r))}</label>`).join("") || '<p class="empty">None yet.</p>';
  /** X counts a link as 23 characters. */
  const xLength = (text) => text.replace(/https?:\/\/\S+/g, "x".repeat(23)).length;

  function showChannel() {
    for (const el of document.querySelectorAll("[data-for]")) {
      el.hidden = el.dataset.for !== channel();
      el.style.display = el.hidden ? "none" : "";  // the grid's label style would show it
    }
    $("c-template").innerHTML = templates.filter((t) => t.channel === channel()).map((t) => `<option value="${esc(t.id)}">${esc(t.name)}</option>`).join("")
      || '<option value="">no template for this channel yet</option>';
    later();
  }

  async function render(t, context) {
    return WW.api("/api/v1/templates/preview", {json: {subject: t.subject, html: t.html, text: t.text, channel: t.channel, context}});
  }

  function card(title, r, extra = "") {
    return `<article class="preview-card"><h3>${esc(title)}</h3>${r.subject ? `<p><b>Subject:</b> ${esc(r.subject)}</p>` : ""}<pre>${esc(r.text)}</pre>${extra}</article>`;
  }

  async function previews() {
    const t = templates.find((x) => x.id === $("c-template").value);
    if (!t) { $("previews").innerHTML = ""; return; }
    $("preview-status").textContent = "rendering…";
    const out = [];
    try {
      if (channel() === "social") {
        for (const p of checked("platforms")) {
          const r = await render(t, {platform: p});
          const n = p === "x" ? xLength(r.text) : r.text.length, over = n > LIMITS[p];
          out.push(card(p, r, `<p class="${over ? "error" : "status"}">${n} of ${LIMITS[p]} characters${over ? ": too long" : ""}</p>`));
        }
      } else if (channel() === "toolkit") {
        const names = checked("messengers").map((id) => document.querySelector(`input[value="${CSS.escape(id)}"]`).parentElement.textContent.trim());
        for (const name of names.length ? names : ["a messenger"]) {
          out.push(card(`share copy for ${name}`, await render(t, {messenger: {id: "preview", name, role: "messenger"}}), "<p class=\"status\">QR codes and the ZIP are on the campaign's page once it is created.</p>"));
        }
      } else {
        const variants = await WW.api(`/api/v1/templates/${encodeURIComponent(t.id)}/variants`).catch(() => []);
        out.push(card("default language", await render(t, {})));
        for (const v of variants) out.push(card(`language ${v.language}`, await render({...t, ...v}, {})));
      }
      $("previews").innerHTML = out.join("");
      $("preview-status").textContent = `${out.length} previews`;
    } catch (err) { $("preview-status").textContent = "Does not render: " + err.message; }
  }
  const later = () => { clearTimeout(timer); timer = setTimeout(previews, 250); };

  async function load() {
    const [t, audiences, resources, messengers] = await Promise.all(["/api/v1/templates", "/api/v1/audiences", "/api/v1/resources", "/api/v1/messengers"]
      .map((p) => WW.api(p).catch(() => [])));
    templates = t;
    $("c-audience").innerHTML += audiences.map((a) => `<option value="${esc(a.id)}">${esc(a.name)}</option>`).join("");
    $("c-resources").innerHTML = boxes(resources, "resources", (r) => r.title);
    $("c-messengers").innerHTML = boxes(messengers, "messengers", (m) => m.name);
    showChannel();
  }

  async function create(f) {
    const body = {name: f.name, channel: channel(), template_id: f.template_id, resources: checked("resources")};
    if (body.channel === "email" && f.audience_id) body.audience_id = f.audience_id;
    if (body.channel === "email" && f.throttle_per_hour) body.throttle_per_hour = Number(f.throttle_per_hour);
    if (body.channel === "social") body.platforms = checked("platforms");
    if (body.channel === "toolkit") body.messengers = checked("messengers");
    const made = await WW.api("/api/v1/campaigns", {json: body});
    if (f.schedule === "yes") {
      await WW.api(`/api/v1/campaigns/${encodeURIComponent(made.id)}/schedule`, {json: f.send_at ? {send_at: new Date(f.send_at).toISOString()} : {}});
    }
    location.href = `/campaigns/${encodeURIComponent(made.id)}`;
    return `Created “${made.name}”.`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!$("campaign-form")) return;
    $("c-channel").addEventListener("change", showChannel);
    $("campaign-form").addEventListener("change", (e) => { if (e.target.id !== "c-channel") later(); });
    $("test-send").addEventListener("click", async () => {
      $("test-status").textContent = "sending…";
      try { const r = await WW.api(`/api/v1/templates/${encodeURIComponent($("c-template").value)}/test`, {method: "POST"}); $("test-status").textContent = `Test sent to ${r.to}.`; }
      catch (err) { $("test-status").textContent = "Refused: " + err.message; }
    });
    WC.onSubmit("campaign-form", "save-status", create);
    load();
  });
})();
