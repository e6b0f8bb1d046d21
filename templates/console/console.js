/* The console's shared helpers over /ui/app.js: tables, forms that post JSON with the
   session's CSRF token (WW.api), and what the server says the role may change. */
"use strict";
const WC = {
  /** Whether the page was rendered with the right to change (data-may on <main>). */
  may: (what) => (document.getElementById("content").dataset.may || "").split(" ").includes(what),
  /** Rows → table body; cols: [[header, (row) => html]]. */
  fill(tableId, rows, cols, empty = "Nothing yet.") {
    const body = WW.$(tableId).tBodies[0];
    body.innerHTML = rows.length ? rows.map((r) => `<tr>${cols.map(([, f]) => `<td>${f(r)}</td>`).join("")}</tr>`).join("")
      : `<tr><td colspan="${cols.length}" class="empty">${WW.esc(empty)}</td></tr>`;
  },
  /** The form's fields as an object (empty ones left out). */
  fields(form) {
    const out = {};
    for (const [k, v] of new FormData(form).entries()) if (k !== "csrf_token" && String(v).trim() !== "") out[k] = String(v).trim();
    return out;
  },
  list: (text) => (text || "").split(",").map((s) => s.trim()).filter(Boolean),
  /** Submit → body(fields) → POST (or method) path; says the outcome in statusId. */
  onSubmit(formId, statusId, send) {
    const form = WW.$(formId);
    if (!form) return;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      WW.$(statusId).textContent = "saving…";
      try { const said = await send(WC.fields(form), form); if (said !== null) WW.$(statusId).textContent = said || "Saved."; }
      catch (err) { WW.$(statusId).textContent = "Refused: " + err.message; }
    });
  },
};
