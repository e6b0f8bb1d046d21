/* Shared helpers of the WINWIN pages (no framework, no CDN). */
"use strict";
const WW = {
  STAGES: ["aware", "use", "produce"],
  $: (id) => document.getElementById(id),
  /** Text safe to put inside HTML. */
  esc: (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])),
  fmt: (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US")),
  fmt1: (n) => Number(n).toLocaleString("en-US", {minimumFractionDigits: 1, maximumFractionDigits: 1}),
  /** The session's CSRF token: the server puts it in the page's forms (hidden field). */
  csrf() {
    const field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  },
  /** GET/POST JSON from our API with the session cookie and the CSRF token (header
   *  X-CSRF-Token, needed by every change); a 401 sends the user to the login. */
  async api(path, options = {}) {
    const init = {credentials: "same-origin", headers: {Accept: "application/json", "X-CSRF-Token": WW.csrf()}, ...options};
    if (options.json !== undefined) {
      init.method = init.method || "POST";
      init.body = JSON.stringify(options.json);
      init.headers["Content-Type"] = "application/json";
    }
    const r = await fetch(path, init);
    if (r.status === 401) { location.href = "/"; throw new Error("signed out"); }
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    if (!r.ok) {
      const err = new Error(WW.problem(body) || `${r.status} ${r.statusText}`);
      err.status = r.status;
      throw err;
    }
    return body;
  },
  /** The readable reason of an error body ({"detail": ...}). */
  problem(body) {
    if (!body || body.detail === undefined) return "";
    const d = body.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) return d.map((x) => (x.field ? `${x.field}: ${x.error}` : x.error || x.msg || JSON.stringify(x))).join("; ");
    return JSON.stringify(d);
  },
  /** Rows of cells → CSV text (RFC 4180 quoting). Text that a spreadsheet would run as a
      formula (starting with = + - @ tab CR) gets a leading ' (OWASP); numbers stay numbers.
      The same rule as services/spreadsheet.py. */
  csvText(rows) {
    const safe = (v) => (typeof v === "string" && /^[=+\-@\t\r]/.test(v) ? `'${v}` : v);
    const cell = (v) => { const s = String(safe(v) ?? ""); return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
    return rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
  },
  /** Rows of cells → a CSV file download. */
  downloadCsv(filename, rows) {
    const text = WW.csvText(rows);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  },
  monthsBetween(first, last) {
    const out = [];
    let [y, m] = first.split("-").map(Number);
    const [ly, lm] = last.split("-").map(Number);
    while ((y < ly || (y === ly && m <= lm)) && out.length < 240) {
      out.push(`${y}-${String(m).padStart(2, "0")}`);
      m += 1; if (m > 12) { m = 1; y += 1; }
    }
    return out;
  },
  thisMonth() { return new Date().toISOString().slice(0, 7); },
  addMonths(label, n) {
    const [y, m] = label.split("-").map(Number);
    const d = new Date(Date.UTC(y, m - 1 + n, 1));
    return d.toISOString().slice(0, 7);
  },
};
