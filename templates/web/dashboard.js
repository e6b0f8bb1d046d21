/* The analysts' dashboard: live counters (SSE), run chart, growth, attribution,
   channels, messenger leaderboard, bots, stream health, CSV of what is shown. */
"use strict";
(() => {
  const {$, esc, fmt, fmt1, STAGES} = WW;
  const RULES = {shift: "shift (6+ months on one side of the median)", trend: "trend (5+ rises or falls in a row)"};
  const view = {counters: null, stages: null, attr: [], channels: [], panels: null};
  let names = {}, namesAt = 0, source = null, pending = null, seq = 0;
  /** A count as shown: a withheld one (null in a shared view) reads "<11". */
  const cnt = (v, d) => v === null ? `<${d?.disclosure?.min_cell || 11}` : fmt(v);

  function choice() {
    return {from: $("from").value, to: $("to").value, baseline: $("baseline").value,
            model: $("model").value, window: $("window").value};
  }

  function restore() {
    const q = new URLSearchParams(location.search), now = WW.thisMonth();
    $("to").value = q.get("to") || now;
    $("from").value = q.get("from") || WW.addMonths($("to").value, -11);
    if (q.get("model")) $("model").value = q.get("model");
    if (q.get("window")) $("window").value = q.get("window");
    fillBaseline(q.get("baseline"));
  }

  function fillBaseline(wanted) {
    const c = choice(), keep = wanted || c.baseline;
    if (!/^\d{4}-\d{2}$/.test(c.from) || !/^\d{4}-\d{2}$/.test(c.to) || c.from > c.to) return false;
    const months = WW.monthsBetween(c.from, c.to);
    $("baseline").innerHTML = months.map((m) => `<option>${m}</option>`).join("");
    $("baseline").value = months.includes(keep) ? keep : months[0];
    return true;
  }

  function remember() {
    const c = choice();
    history.replaceState(null, "", "?" + new URLSearchParams(c).toString());
  }

  // -- live counters ---------------------------------------------------------------
  function setCounter(id, v, d) {
    const el = $(id), s = cnt(v, d);
    if (el.textContent !== s) { el.textContent = s; el.classList.add("flash"); setTimeout(() => el.classList.remove("flash"), 700); }
  }

  function connect() {
    if (source) source.close();
    const c = choice();
    source = new EventSource(`/api/v1/live?from=${c.from}&to=${c.to}`);
    source.addEventListener("counters", (e) => {
      const s = JSON.parse(e.data);
      view.counters = s;
      $("today-label").textContent = s.today.period;
      $("month-label").textContent = s.month.period;
      $("range-label").textContent = `${s.range.from} – ${s.range.to}`;
      for (const st of STAGES) { setCounter("d-" + st, s.today[st], s); setCounter("m-" + st, s.month[st], s); setCounter("r-" + st, s.range[st], s); }
      $("status").className = "status live";
      $("status").textContent = "live · updated " + new Date(s.at).toLocaleTimeString();
      soon();
    });
    source.addEventListener("signed-out", () => { source.close(); location.href = "/"; });
    source.onerror = () => { $("status").className = "status"; $("status").textContent = "reconnecting…"; };
  }

  /** Refresh the panels shortly after counters move (many events → one refresh). */
  function soon() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 1500); }

  // -- panels ----------------------------------------------------------------------
  async function refresh() {
    const c = choice(), mine = ++seq;
    if (!fillBaseline()) { $("status").textContent = "Choose a valid range: From must not be after To."; return; }
    const range = `from=${c.from}&to=${c.to}`, credit = `model=${c.model}&window_days=${c.window}`;
    try {
      const [stages, attr, channels, panels] = await Promise.all([
        WW.api(`/api/v1/metrics/stages?period=month&${range}&baseline=${c.baseline}`),
        WW.api(`/api/v1/attribution?${credit}&${range}&group_by=campaign`),
        WW.api(`/api/v1/attribution?${credit}&${range}&group_by=channel`),
        WW.api(`/api/v1/dashboard/panels?${credit}&${range}`),
        campaignNames(),
      ]);
      if (mine !== seq) return; // a newer refresh is under way
      Object.assign(view, {stages, attr: attr.rows, channels: channels.rows, panels});
      const d = stages.disclosure || {};  // exact counts (admin, staff) are not for sharing
      $("disclosure").textContent = d.exact ? "Exact counts: not for sharing" : d.min_cell ? `Counts under ${d.min_cell} are withheld (<${d.min_cell})` : "";
      renderChart(stages); renderGrowth(stages); renderAttribution(attr); renderChannels(channels.rows);
      renderBoard(panels.leaderboard); renderBots(panels.bots); renderStream(panels.stream);
    } catch (err) {
      $("status").className = "status error";
      $("status").textContent = "Could not load: " + err.message;
    }
  }

  async function campaignNames() {
    if (Date.now() - namesAt < 30000) return;
    try {
      const list = await WW.api("/api/v1/campaigns");
      names = Object.fromEntries(list.map((x) => [x.id, x.name]));
      namesAt = Date.now();
    } catch (_) { /* names are a nicety */ }
  }

  /** A round tick so that four ticks cover ``max``. */
  function nice(max) {
    const raw = Math.max(1, max) / 4, step = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const k of [1, 2, 2.5, 5, 10]) if (k * step >= raw) return Math.max(1, Math.ceil(k * step));
    return 10 * step;
  }

  function renderChart(data) {
    const svg = $("chart"), W = Math.max(320, Math.round(svg.clientWidth || 900)), H = W < 600 ? 240 : 300;
    const rows = data.rows, L = 52, R = 30, T = 14, B = H - 44;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const tick = nice(Math.max(1, ...rows.flatMap((x) => STAGES.map((s) => x[s])))), top = tick * 4;
    const X = (i) => L + (rows.length === 1 ? (W - L - R) / 2 : i * (W - L - R) / (rows.length - 1));
    const Y = (v) => B - (v / top) * (B - T);
    let out = `<desc id="chart-desc">Monthly unique people aware, using and producing, ${esc(rows[0].period)} to ${esc(rows[rows.length - 1].period)}</desc>`;
    for (let k = 0; k <= 4; k++) {
      const y = Y(k * tick);
      out += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#e3e8ee"/><text x="${L - 6}" y="${y + 4}" text-anchor="end">${fmt(k * tick)}</text>`;
    }
    const every = Math.ceil(rows.length / Math.max(2, Math.floor((W - L - R) / 78)));
    rows.forEach((x, i) => { if (i % every === 0 || i === rows.length - 1) out += `<text x="${X(i)}" y="${B + 18}" text-anchor="middle">${esc(x.period)}</text>`; });
    const flagged = signalMonths(data);
    for (const st of STAGES) {
      const med = data.median ? data.median[st] : null;
      if (med !== null && med !== undefined) out += `<line x1="${L}" x2="${W - R}" y1="${Y(med)}" y2="${Y(med)}" stroke="var(--${st})" stroke-dasharray="6 5" stroke-width="1.5" opacity=".8"><title>${st} median ${fmt(med)}</title></line>`;
      out += `<polyline fill="none" stroke="var(--${st})" stroke-width="2.5" stroke-linejoin="round" points="${rows.map((x, i) => x[st] === null ? "" : `${X(i)},${Y(x[st])}`).join(" ")}"/>`;
      rows.forEach((x, i) => {
        if (x[st] === null) { out += `<text x="${X(i)}" y="${B - 4}" text-anchor="middle" fill="var(--${st})">${cnt(null, data)}</text>`; return; }
        if (flagged[st].has(x.period)) out += `<circle cx="${X(i)}" cy="${Y(x[st])}" r="7" fill="none" stroke="var(--${st})" stroke-width="1.5"/>`;
        out += `<circle cx="${X(i)}" cy="${Y(x[st])}" r="3.5" fill="var(--${st})"><title>${st} ${esc(x.period)}: ${cnt(x[st], data)}</title></circle>`;
      });
    }
    out += `<text x="${L}" y="${B + 36}">unique people</text>`;
    svg.innerHTML = out;
    const items = STAGES.flatMap((st) => (data.signals?.[st] || []).map((s) => `<li><b>${st}</b>: ${esc(RULES[s.rule] || s.rule)}, ${esc(s.from)} → ${esc(s.to)}</li>`));
    $("signals").innerHTML = items.length ? items.join("") : '<li class="empty">No run-chart signal in this range.</li>';
    $("series").tBodies[0].innerHTML = rows.map((x) => `<tr><th scope="row">${esc(x.period)}</th>${STAGES.map((s) => `<td class="n">${cnt(x[s], data)}</td>`).join("")}</tr>`).join("");
  }

  function signalMonths(data) {
    const out = {};
    for (const st of STAGES) {
      out[st] = new Set();
      for (const s of data.signals?.[st] || []) for (const m of WW.monthsBetween(s.from, s.to)) out[st].add(m);
    }
    return out;
  }

  function renderGrowth(data) {
    const base = data.rows.find((r) => r.period === data.baseline) || {}, last = data.rows[data.rows.length - 1];
    $("growth-label").textContent = `${data.baseline} → ${last.period}`;
    $("growth").tBodies[0].innerHTML = STAGES.map((s) => {
      const g = data.growth[s];
      return `<tr><th scope="row">${s}</th><td class="n">${cnt(base[s], data)}</td><td class="n">${cnt(last[s], data)}</td><td class="n"><b>${g === null || g === undefined ? "–" : "×" + g.toFixed(2)}</b></td></tr>`;
    }).join("");
  }

  function pivot(rows) {
    const by = new Map();
    for (const r of rows) {
      if (!by.has(r.key)) by.set(r.key, {key: r.key});
      by.get(r.key)[r.stage] = r;
    }
    const weight = (x) => STAGES.reduce((n, s) => n + (x[s]?.people || 0), 0);
    return [...by.values()].sort((a, b) => (a.key === "unattributed") - (b.key === "unattributed") || weight(b) - weight(a) || String(a.key).localeCompare(b.key));
  }

  function renderAttribution(answer) {
    $("attr-label").textContent = `${answer.model.replace("_", " ")}, ${answer.window_days}-day window`;
    const rows = pivot(answer.rows);
    const label = (key) => key === "unattributed" ? '<span class="empty">unattributed</span>'
      : names[key] ? `<a href="/campaigns/${encodeURIComponent(key)}">${esc(names[key])}</a>` : esc(key);
    $("attr").tBodies[0].innerHTML = rows.length ? rows.map((x) => `<tr><th scope="row">${label(x.key)}</th>${STAGES.map((s) => {
      const c = x[s];
      return c ? `<td class="n">${c.credited === null ? cnt(null) : fmt1(c.credited)}</td><td class="n">${cnt(c.people)}</td><td class="n">${cnt(c.events)}</td>` : '<td class="n">–</td><td class="n">–</td><td class="n">–</td>';
    }).join("")}</tr>`).join("") : '<tr><td colspan="10" class="empty">Nothing credited in this range yet.</td></tr>';
  }

  function renderChannels(rows) {
    const list = pivot(rows);
    $("channels").tBodies[0].innerHTML = list.length ? list.map((x) => `<tr><th scope="row">${esc(x.key)}</th>${STAGES.map((s) => `<td class="n">${x[s]?.people === null ? cnt(null) : fmt(x[s]?.people || 0)}</td>`).join("")}<td class="n">${fmt1(STAGES.reduce((n, s) => n + (x[s]?.credited || 0), 0))}</td></tr>`).join("")
      : '<tr><td colspan="5" class="empty">No credited events yet.</td></tr>';
  }

  function renderBoard(board) {
    $("board").tBodies[0].innerHTML = board.length ? board.map((m, i) => `<tr><td class="n">${i + 1}</td><th scope="row">${esc(m.name)} <span class="status">${esc(m.role)}</span></th>${STAGES.map((s) => `<td class="n">${cnt(m[s])}</td>`).join("")}<td class="n">${fmt1(m.credited)}</td></tr>`).join("")
      : '<tr><td colspan="6" class="empty">No messenger credited in this range yet.</td></tr>';
  }

  function renderBots(bots) {
    $("counted").textContent = fmt(bots.counted);
    $("flagged").textContent = fmt(bots.flagged);
    $("bots").tBodies[0].innerHTML = bots.rows.length ? bots.rows.map((r) => `<tr><td>${esc(r.reason)}</td><td>${esc(r.type)}</td><td class="n">${fmt(r.events)}</td></tr>`).join("")
      : '<tr><td colspan="3" class="empty">No bot or scanner traffic in this range.</td></tr>';
  }

  function renderStream(s) {
    $("lag").textContent = fmt(s.total_lag);
    $("lag").className = s.total_lag > 10000 ? "warn" : "";
    $("dead").textContent = fmt(s.deadletters);
    $("dead").className = s.deadletters > 0 ? "bad" : "";
    const live = s.workers.filter((w) => Date.now() - Date.parse(w.seen_at) < 15000);
    $("workers").textContent = fmt(live.length);
    $("workers").className = live.length ? "ok" : "bad";
    const parts = live.map((w) => `${w.worker_id}: ${w.assigned_partitions ?? 0} partitions, ${fmt(w.events)} events`);
    const lag = s.lag ? Object.entries(s.lag).map(([t, n]) => `${t} ${fmt(n)}`).join(", ") : "";
    $("stream-note").textContent = s.error ? `Kafka: ${s.error}` : [lag && `lag by topic: ${lag}`, ...parts].filter(Boolean).join(" · ");
  }

  // -- CSV of what is shown (built by the server) -------------------------------------
  /** The CSV is meant to be shared: the server withholds small counts (<11) for everyone. */
  function download() {
    const c = choice();
    location.href = `/api/v1/dashboard/export.csv?from=${c.from}&to=${c.to}&baseline=${c.baseline}&model=${c.model}&window_days=${c.window}`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    restore();
    $("controls").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
    for (const id of ["from", "to"]) $(id).addEventListener("change", () => { if (fillBaseline()) { remember(); connect(); refresh(); } });
    for (const id of ["baseline", "model", "window"]) $(id).addEventListener("change", () => { remember(); refresh(); });
    $("csv").addEventListener("click", download);
    let resized = null;
    window.addEventListener("resize", () => { clearTimeout(resized); resized = setTimeout(() => view.stages && renderChart(view.stages), 200); });
    connect();
    refresh();
    setInterval(refresh, 15000);
  });
})();
