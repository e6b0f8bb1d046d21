/* Audiences: the segment builder with its live count (POST /api/v1/audiences/count),
   saving (POST /api/v1/audiences) and the list (GET). */
"use strict";
(() => {
  const {$, esc, fmt} = WW;
  let timer = null, asked = 0;

  /** The builder's fields → the rule of services/domain/segments.py. */
  function rule() {
    const f = WC.fields($("builder")), all = [];
    for (const name of ["role", "language", "needs"]) {
      const values = WC.list(f[name]);
      if (values.length) all.push({attr: name, in: values});
    }
    if (f.attr && f.value) all.push({attr: f.attr, eq: f.value});
    const engagement = [];
    for (const n of [1, 2]) {
      if (!f["reached" + n]) continue;
      const clause = {stage: f["stage" + n], reached: f["reached" + n] === "yes"};
      if (f["days" + n]) clause.within_days = Number(f["days" + n]);
      engagement.push(clause);
    }
    return {filter: all.length ? {all} : null, engagement};
  }

  function said(r) {
    const part = (f) => (f.attr ? `${f.attr} ${f.in ? "is one of " + f.in.join(", ") : f.eq !== undefined ? "is " + f.eq : f.exists ? "is set" : "is not set"}` : JSON.stringify(f));
    const who = !r.filter ? "anyone" : r.filter.all ? r.filter.all.map(part).join("; ") : part(r.filter);
    const did = (r.engagement || []).map((c) => `${c.reached ? "reached" : "did not reach"} ${c.stage}${c.within_days ? ` in the last ${c.within_days} days` : " ever"}`);
    return [who, did.join(" and ") || "—"];
  }

  async function count() {
    const mine = ++asked;
    $("count-status").textContent = "counting…";
    try {
      const r = await WW.api("/api/v1/audiences/count", {json: {rule: rule()}});
      if (mine !== asked) return;  // an older answer arriving late
      $("count").textContent = fmt(r.people);
      $("sample").textContent = r.sample.length ? r.sample.join(", ") : "nobody";
      $("count-status").textContent = `${fmt(r.people)} people with consent match`;
    } catch (err) { if (mine === asked) $("count-status").textContent = "Cannot count: " + err.message; }
  }

  async function load() {
    try {
      const rows = await WW.api("/api/v1/audiences");
      WC.fill("audiences", rows, [["Name", (a) => esc(a.name)], ["Who", (a) => esc(said(a.rule)[0])],
        ["Engagement", (a) => esc(said(a.rule)[1])], ["Id", (a) => `<code>${esc(a.id)}</code>`]], "No audience yet.");
      $("status").textContent = `${rows.length} audiences`;
    } catch (err) { $("status").textContent = "Could not load: " + err.message; }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!$("builder")) { load(); return; }
    const again = () => { clearTimeout(timer); timer = setTimeout(count, 250); };
    $("builder").addEventListener("input", again);
    $("builder").addEventListener("change", again);
    WC.onSubmit("builder", "save-status", async (f) => {
      const saved = await WW.api("/api/v1/audiences", {json: {name: f.name, rule: rule()}});
      load();
      return `Saved “${saved.name}” (id ${saved.id}).`;
    });
    load(); count();
  });
})();
