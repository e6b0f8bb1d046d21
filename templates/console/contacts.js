/* Contacts: search by external id, name or email, a page of 50 at a time. */
"use strict";
(() => {
  const {$, esc} = WW;
  const PAGE = 50;
  let offset = 0;

  async function load() {
    const q = new URLSearchParams({q: $("q").value.trim(), limit: String(PAGE + 1), offset: String(offset)});
    try {
      const rows = await WW.api("/api/v1/contacts?" + q.toString());
      const shown = rows.slice(0, PAGE);
      WC.fill("contacts", shown, [["External id", (r) => `<a href="/contacts/${encodeURIComponent(r.external_id)}">${esc(r.external_id)}</a>`],
        ["Name", (r) => esc(r.name || "—")], ["Email", (r) => esc(r.email || "—")], ["Role", (r) => esc(r.role || "—")],
        ["Language", (r) => esc(r.language || "—")], ["Email consent", (r) => esc(r.consent.email)]], "No contact matches.");
      $("prev").disabled = offset === 0; $("next").disabled = rows.length <= PAGE;
      $("status").textContent = shown.length ? `Contacts ${offset + 1}–${offset + shown.length}` : "No contact matches.";
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("search").addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
    $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
    $("next").addEventListener("click", () => { offset += PAGE; load(); });
    load();
  });
})();

/* Import: the file goes up as text/csv (POST /api/v1/contacts/import), then the job is
   polled (GET …/import/{id}) into the progress bar until done; the counts, and a link to
   the rejected rows (…/rejected.csv) when there are any. */
(() => {
  const {$} = WW;
  const IMPORT = "/api/v1/contacts/import";
  const wait = (ms) => new Promise((done) => setTimeout(done, ms));

  function show(job) {
    const bar = $("i-progress");
    bar.max = Math.max(1, job.rows_total); bar.value = job.state === "running" ? job.rows_read : bar.max;
    bar.setAttribute("aria-valuetext", `${job.rows_read} of ${job.rows_total} rows`);
    if (job.state === "running") return `Importing… ${WW.fmt(job.rows_read)} of ${WW.fmt(job.rows_total)} rows read.`;
    if (job.state === "failed") return `The import stopped: ${job.problem}`;
    let said = `Import finished: ${WW.fmt(job.created)} created, ${WW.fmt(job.updated)} updated, ${WW.fmt(job.rejected)} rejected.`;
    if (job.kept_unsubscribed) said += ` ${WW.fmt(job.kept_unsubscribed)} kept unsubscribed (only the person can subscribe again).`;
    return said;
  }

  async function follow(job) {
    while (job.state === "running") {
      $("import-status").textContent = show(job);
      await wait(400);
      job = await WW.api(`${IMPORT}/${encodeURIComponent(job.id)}`);
    }
    $("import-report-link").href = `${IMPORT}/${encodeURIComponent(job.id)}/rejected.csv`;
    $("import-report").hidden = !job.rejected;
    return show(job);
  }

  document.addEventListener("DOMContentLoaded", () => {
    WC.onSubmit("import", "import-status", async (_, form) => {
      const file = $("i-file").files[0];
      $("import-report").hidden = true; $("import-progress").hidden = false;
      const job = await WW.api(IMPORT, {method: "POST", body: file,
        headers: {Accept: "application/json", "X-CSRF-Token": WW.csrf(), "Content-Type": "text/csv"}});
      const said = await follow(job);
      form.reset(); $("search").requestSubmit();
      return said;
    });
  });
})();
