/* Staff: the campaign list with status and sending progress (GET /api/v1/campaigns). */
"use strict";
(() => {
  const {$, esc, fmt} = WW;
  let all = [];

  function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }

  function progressBar(p) {
    const done = p.sent + p.suppressed + p.failed, pct = p.total ? Math.round((100 * done) / p.total) : 0;
    return `<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}" aria-label="${pct}% processed"><i style="width:${pct}%"></i></div><span class="status">${fmt(done)} / ${fmt(p.total)}</span>`;
  }

  function render() {
    const status = $("status-filter").value, channel = $("channel-filter").value;
    const rows = all.filter((x) => (!status || x.status === status) && (!channel || x.channel === channel));
    $("campaigns").tBodies[0].innerHTML = rows.length ? rows.map((x) => `<tr>
      <th scope="row"><a href="/campaigns/${encodeURIComponent(x.id)}">${esc(x.name)}</a></th><td>${esc(x.channel)}</td>
      <td><span class="pill ${esc(x.status)}">${esc(x.status)}</span></td><td>${esc(when(x.send_at))}</td>
      <td>${progressBar(x.progress)}</td><td class="n">${fmt(x.progress.sent)}</td><td class="n">${fmt(x.progress.suppressed)}</td><td class="n">${fmt(x.progress.failed)}</td></tr>`).join("")
      : '<tr><td colspan="8" class="empty">No campaign matches.</td></tr>';
  }

  async function load() {
    try {
      all = await WW.api("/api/v1/campaigns");
      $("status").textContent = `${all.length} campaigns · updated ${new Date().toLocaleTimeString()}`;
      render();
    } catch (err) { $("status").textContent = "Could not load campaigns: " + err.message; }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("status-filter").addEventListener("change", render);
    $("channel-filter").addEventListener("change", render);
    load();
    setInterval(load, 5000);
  });
})();
