/* Staff: render a template in the sandbox against the sample context (POST /api/v1/templates/preview). */
"use strict";
(() => {
  const {$} = WW;

  async function preview(e) {
    if (e) e.preventDefault();
    let context = null;
    const raw = $("context").value.trim();
    if (raw) {
      try { context = JSON.parse(raw); } catch (err) { $("status").textContent = "Context is not valid JSON: " + err.message; return; }
    }
    const body = {channel: $("channel").value, subject: $("subject").value || null, html: $("html").value || null, text: $("text").value, context};
    $("status").textContent = "rendering…";
    try {
      const out = await WW.api("/api/v1/templates/preview", {json: body});
      $("out-subject").textContent = out.subject || "";
      $("out-text").textContent = out.text || "";
      $("out-html").srcdoc = out.html || "<p style='font:14px sans-serif;color:#555'>(no HTML part)</p>";
      $("status").className = "status ok";
      $("status").textContent = "Renders in the sandbox.";
    } catch (err) {
      $("status").className = "status error";
      $("status").textContent = "Does not render: " + err.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => { $("form").addEventListener("submit", preview); });
})();
