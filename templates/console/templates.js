/* Templates: list, create, edit, clone, language variants, a live preview as you type
   (POST /api/v1/templates/preview: the sending sandbox) and "Send me a test". */
"use strict";
(() => {
  const {$, esc} = WW;
  let editing = null, timer = null, all = [];
  const edits = () => $("list").dataset.edits === "yes";

  async function load() {
    try {
      all = await WW.api("/api/v1/templates");
      WC.fill("templates", all, [["Name", (t) => esc(t.name)], ["Channel", (t) => esc(t.channel)], ["Subject", (t) => esc(t.subject || "—")],
        ["Actions", (t) => (edits() ? `<button type="button" class="act" data-edit="${esc(t.id)}">Edit ${esc(t.name)}</button> <button type="button" class="act" data-clone="${esc(t.id)}">Clone ${esc(t.name)}</button>` : "—")]],
        "No template yet.");
      $("status").textContent = `${all.length} templates`;
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }

  function open(t, copy) {
    editing = copy ? null : t.id;
    $("t-name").value = copy && t.name ? `Copy of ${t.name}` : t.name;
    $("t-channel").value = t.channel; $("t-channel").disabled = !copy && !!t.id;
    $("t-language").value = ""; $("t-subject").value = t.subject || ""; $("t-html").value = t.html || ""; $("t-text").value = t.text || "";
    $("editing").textContent = editing ? `editing “${t.name}”` : "a new template";
    $("send-test").disabled = !editing;
    $("t-name").focus();
    preview();
  }

  function body() {
    const subject = $("t-subject").value, html = $("t-html").value;
    return {name: $("t-name").value, channel: $("t-channel").value, subject: subject || null, html: html || null, text: $("t-text").value};
  }

  async function preview() {
    const b = body();
    try {
      const out = await WW.api("/api/v1/templates/preview", {json: {channel: b.channel, subject: b.subject, html: b.html, text: b.text}});
      $("out-subject").textContent = out.subject || ""; $("out-text").textContent = out.text || "";
      $("out-html").srcdoc = out.html || "<p>(no HTML part)</p>";
      $("preview-status").textContent = "Renders in the sandbox.";
    } catch (err) { $("preview-status").textContent = "Does not render: " + err.message; }
  }

  async function save() {
    const b = body(), language = $("t-language").value.trim();
    if (language) {
      if (!editing) return "Save the template first, then its language variants.";
      await WW.api(`/api/v1/templates/${encodeURIComponent(editing)}/variants/${encodeURIComponent(language)}`, {method: "PUT", json: {subject: b.subject, html: b.html, text: b.text}});
      return `Saved the ${language} variant.`;
    }
    const saved = editing ? await WW.api(`/api/v1/templates/${encodeURIComponent(editing)}`, {method: "PUT", json: b})
      : await WW.api("/api/v1/templates", {json: b});
    editing = saved.id; $("send-test").disabled = false; $("t-channel").disabled = true;
    $("editing").textContent = `editing “${saved.name}”`;
    load();
    return `Saved “${saved.name}”.`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    load();
    if (!$("editor")) return;
    WC.onSubmit("editor", "save-status", save);
    $("editor").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(preview, 250); });
    $("new").addEventListener("click", () => open({name: "", channel: "email", subject: "", html: "", text: ""}, true));
    $("send-test").addEventListener("click", async () => {
      try { const r = await WW.api(`/api/v1/templates/${encodeURIComponent(editing)}/test`, {json: {}}); $("save-status").textContent = `Test sent to ${r.to}.`; }
      catch (err) { $("save-status").textContent = "Refused: " + err.message; }
    });
    document.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-edit], button[data-clone]");
      if (!b) return;
      const t = all.find((x) => x.id === (b.dataset.edit || b.dataset.clone));
      if (t) open(t, !!b.dataset.clone);
    });
    preview();
  });
})();
