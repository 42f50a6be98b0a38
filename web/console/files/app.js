// Slipway console: a small single-page app over the native API, live by
// Server-Sent Events (/api/v1/events). No framework, nothing fetched from
// elsewhere. Views are functions of the route; each returns a cleanup.

const $ = (sel, root = document) => root.querySelector(sel);

// Anything the Content-Security-Policy refuses is a bug of ours: count it
// where the browser tests look, and say it in the console.
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.cspViolations.push(`${e.violatedDirective}: ${e.blockedURI || 'inline'}`);
  console.error('CSP refused', e.violatedDirective, e.blockedURI);
});
const main = $('#main');
let me = null;            // the logged-in user: {user, role, roles, must_change_password}
let cleanup = () => {};   // the current view's
const listeners = new Set(); // live event handlers of the current view

// ---------- API ----------

function csrfToken() {
  const c = document.cookie.split('; ').find((c) => c.startsWith('slipway_csrf='));
  return c ? decodeURIComponent(c.slice('slipway_csrf='.length)) : '';
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (typeof body === 'string') { // a document as it is (a site design's YAML)
    opts.headers['Content-Type'] = 'application/yaml';
    opts.body = body;
  } else if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  if (method !== 'GET') opts.headers['X-CSRF-Token'] = csrfToken();
  const r = await fetch('/api/v1' + path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (r.status === 401 && path !== '/login') {
    me = null;
    route();
    throw new Error('Your session ended: log in again.');
  }
  if (!r.ok) throw new Error((data && data.error) || r.statusText);
  return data;
}

// ---------- small helpers ----------

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function toast(msg, bad) {
  const t = $('#toast');
  t.textContent = msg;
  t.className = 'toast' + (bad ? ' bad' : '');
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

// when is a time as people say it ("5 minutes ago", "in 2 hours"), the
// exact time on hover and for screen readers' inspection.
function when(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d)) return esc(t);
  return `<time datetime="${esc(d.toISOString())}" title="${esc(d.toLocaleString())}">${esc(relative(d))}</time>`;
}

const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const timeUnits = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];

function relative(d) {
  const secs = (d.getTime() - Date.now()) / 1000;
  if (Math.abs(secs) < 10) return 'just now';
  const [unit, size] = timeUnits.find(([, n]) => Math.abs(secs) >= n);
  return relativeFormat.format(Math.round(secs / size), unit);
}

// label names a ManagedHostState as the API's history does: state/sub.
function label(s) {
  if (!s) return '';
  const top = s.state;
  if (s.machine_state) return top + '/' + s.machine_state.state;
  const v = s.validation_state && s.validation_state.machine_validation && s.validation_state.machine_validation.machinevalidating;
  if (v) return top + '/' + v.context;
  if (s.instance_state) return top + '/' + s.instance_state.state;
  if (s.cleanup_state) return top + '/' + s.cleanup_state.state;
  if (s.details && s.details.cause) return top + '/' + (typeof s.details.cause === 'string' ? s.details.cause : Object.keys(s.details.cause)[0]);
  if (s.reprovision_state) return top + '/' + (typeof s.reprovision_state === 'string' ? s.reprovision_state : Object.keys(s.reprovision_state)[0]);
  return top;
}

function badge(text, cls) {
  return `<span class="badge ${esc(cls || String(text).split('/')[0])}">${esc(text)}</span>`;
}

// plainNames are NICo's lifecycle states in words; badges show both, the
// plain name first and NICo's (which its consumers and the logs use) beside.
const plainNames = {
  created: 'New', hostinit: 'Starting up', validation: 'Installing', ready: 'Ready', assigned: 'In use',
  hostreprovision: 'Reinstalling', dpureprovision: 'Reinstalling DPU', waitingforcleanup: 'Waiting for cleanup',
  failed: 'Failed', forcedeletion: 'Being removed',
};

function stateName(top) {
  const plain = plainNames[top];
  return plain ? `${esc(plain)} <small class="nico">${esc(top)}</small>` : esc(top);
}

function stateBadge(s) {
  const nico = label(s), top = s && s.state, plain = plainNames[top];
  const text = plain ? `${esc(plain)} <small class="nico">${esc(nico)}</small>` : esc(nico);
  return `<span class="badge ${esc(top || '')}">${text}</span>`;
}

// bar is a native progress bar: no inline style, which the console's
// Content-Security-Policy would refuse.
function bar(pct) {
  const p = Math.max(0, Math.min(100, Math.round(pct)));
  return `<progress class="bar" value="${p}" max="100" aria-label="${p}%">${p}%</progress>`;
}

function may(role) {
  const rank = { viewer: 1, operator: 2, admin: 3 };
  return me && rank[me.role] >= rank[role];
}

function on(kind, fn) {
  const h = { kind, fn };
  listeners.add(h);
  return () => listeners.delete(h);
}

// throttle runs fn at most once per ms, the last call winning.
function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

// watchFilters calls apply with a filter form's fields once typing pauses
// for ms. The address (path) follows the filter, for links and reloads,
// without re-rendering the page under the user's fingers.
function watchFilters(form, ms, path, apply) {
  let typing;
  form.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      const f = new FormData(form), p = new URLSearchParams();
      for (const [k, v] of f) if (v) p.set(k, v);
      history.replaceState(null, '', path + (p.toString() ? '?' + p : ''));
      apply(f);
    }, ms);
  });
  form.addEventListener('submit', (e) => e.preventDefault());
}

// ---------- live events ----------

let source = null;

function connectLive() {
  if (source) source.close();
  source = new EventSource('/api/v1/events');
  const live = $('#live');
  source.onopen = () => { live.textContent = 'live'; live.classList.add('on'); };
  source.onerror = () => { live.textContent = 'reconnecting'; live.classList.remove('on'); };
  for (const kind of ['state', 'onboarding', 'bmc', 'task', 'overflow']) {
    source.addEventListener(kind, (e) => {
      const data = JSON.parse(e.data || '{}');
      for (const h of listeners) if (h.kind === kind || h.kind === '*') h.fn(data, kind);
    });
  }
}

// ---------- login ----------

function loginView() {
  main.innerHTML = `<section class="panel login" aria-labelledby="login-h">
    <h1 id="login-h">Log in</h1>
    <form id="login">
      <label>User <input name="username" autocomplete="username" required autofocus></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button class="primary" type="submit">Log in</button>
      <p class="error" id="login-error" role="alert"></p>
    </form></section>`;
  $('#login').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      me = await api('POST', '/login', { username: f.get('username'), password: f.get('password') });
      startSession();
    } catch (err) {
      $('#login-error').textContent = err.message;
    }
  });
  return () => {};
}

function changePasswordView() {
  main.innerHTML = `<section class="panel login"><h1>Choose a password</h1>
    <p class="muted">You logged in with a one-time password. Choose your own (at least 10 characters).</p>
    <form id="pw"><label>New password <input name="password" type="password" minlength="10" autocomplete="new-password" required autofocus></label>
    <button class="primary" type="submit">Save</button><p class="error" id="pw-error" role="alert"></p></form></section>`;
  $('#pw').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('PUT', `/users/${encodeURIComponent(me.user)}/password`, { password: new FormData(e.target).get('password') });
      me = await api('GET', '/me');
      toast('Password changed.');
      route();
    } catch (err) { $('#pw-error').textContent = err.message; }
  });
  return () => {};
}

function startSession() {
  $('#nav').hidden = false;
  $('#menu').hidden = false;
  $('#logout').hidden = false;
  $('#whoami').textContent = `${me.user} (${me.role})`;
  for (const a of document.querySelectorAll('nav [data-role]')) a.hidden = !may(a.dataset.role);
  connectLive();
  route();
}

$('#logout').addEventListener('click', async () => {
  try { await api('POST', '/logout'); } catch { /* gone already */ }
  me = null;
  if (source) source.close();
  $('#nav').hidden = true;
  $('#menu').hidden = true;
  $('#logout').hidden = true;
  $('#whoami').textContent = '';
  $('#live').textContent = 'offline';
  $('#live').classList.remove('on');
  location.hash = '#/';
  route();
});

// ---------- overview ----------

const states = ['created', 'hostinit', 'validation', 'ready', 'assigned', 'hostreprovision', 'dpureprovision', 'waitingforcleanup', 'failed', 'forcedeletion'];

function overviewView() {
  main.innerHTML = `<h1>Overview</h1><div id="ov">Loading…</div><h2>Charts</h2><div id="charts">Loading…</div>
    <h2>Recent events</h2><div id="recent"></div>`;
  const load = async () => {
    const o = await api('GET', '/overview');
    const cards = states.map((s) => `<a class="card" href="#/machines?state=${s}"><div class="n">${o.machines_by_state[s] || 0}</div><div class="k">${stateName(s)}</div></a>`).join('');
    const b = o.bmcs ? `<div class="card"><div class="n">${o.bmcs.reachable}/${o.bmcs.total}</div><div class="k">BMCs reachable${o.bmcs.unusable ? `, <span class="error">${o.bmcs.unusable} unusable</span>` : ''}</div></div>` : '';
    const br = o.bridge ? bridgeCard(o.bridge) : '';
    const l = o.leases ? `<div class="card"><div class="n">${o.leases.active}/${o.leases.pool_size}</div><div class="k">DHCP leases</div>${bar(100 * o.leases.active / o.leases.pool_size)}</div>` : '';
    $('#ov').innerHTML = `<p class="muted">${o.machines_total} machines</p><div class="cards">${cards}${b}${l}${br}</div>`;
    $('#recent').innerHTML = `<div class="table-wrap"><table><thead><tr><th>When</th><th>Machine</th><th>State</th><th>Cause</th></tr></thead><tbody>
      ${o.recent.map((r) => `<tr><td>${when(r.at)}</td><td><a href="#/machines/${encodeURIComponent(r.machine_id)}">${esc(r.machine_id)}</a></td><td>${stateBadge(r.managed_host_state)}</td><td>${esc(r.cause)}</td></tr>`).join('')}
      </tbody></table></div>`;
  };
  const drawCharts = async () => { $('#charts').innerHTML = chartsHTML(await api('GET', '/charts?window=1h')); };
  load().catch((e) => toast(e.message, true));
  drawCharts().catch((e) => toast(e.message, true));
  const stop = on('*', throttle(() => load().catch(() => {}), 1000));
  // The charts read the hour's changes, and their step is a minute: they
  // are drawn again once a minute at most, however busy the site.
  const stopCharts = on('state', throttle(() => drawCharts().catch(() => {}), 60000));
  // The uplink changes without an event on the bus: look again now and then.
  const poll = setInterval(() => load().catch(() => {}), 5000);
  const chartPoll = setInterval(() => drawCharts().catch(() => {}), 60000);
  return () => { stop(); stopCharts(); clearInterval(poll); clearInterval(chartPoll); };
}

// ---------- charts: plain SVG, coloured by the theme's variables ----------

const chartW = 640, chartH = 180;

// chartsHTML draws the overview's charts from /api/v1/charts.
function chartsHTML(c) {
  return `<div class="charts">
    <figure class="chart wide">${stateAreaSVG(c)}<figcaption>Machines per state, the last hour ${stateLegend(c)}</figcaption></figure>
    <figure class="chart">${nowSVG(c)}<figcaption>Where the machines are now</figcaption></figure>
    <figure class="chart">${readySVG(c.time_to_ready)}<figcaption>${readyCaption(c.time_to_ready)}</figcaption></figure>
    <figure class="chart">${shareSVG('BMCs', c.bmcs, [['reachable', 'reachable', 'ok'], ['partial', 'partial', 'warn'], ['unusable', 'unusable', 'bad'], ['new', 'not polled yet', 'muted']])}
      ${leaseSVG(c.leases)}<figcaption>BMC reachability and the DHCP pool</figcaption></figure>
  </div>`;
}

// plot wraps drawn shapes: the SVG stretches to the width it is given
// (its shapes only), and the words around it are HTML, so that text keeps
// its size whatever the width.
function plot(label, shapes, top, ticks) {
  return `<div class="plot"><span class="ymax">${top}</span><svg viewBox="0 0 ${chartW} ${chartH}" preserveAspectRatio="none" role="img" aria-label="${esc(label)}">${shapes}</svg>
    <div class="ticks">${ticks.map((t) => `<span>${esc(t)}</span>`).join('')}</div></div>`;
}

// stateAreaSVG stacks machines per state over the window, each state in
// its colour, newest on the right.
function stateAreaSVG(c) {
  const n = c.points.length;
  const order = states.filter((s) => (c.states[s] || []).some((v) => v > 0));
  if (n < 2 || !order.length) return '<p class="muted">No machine changed state in the last hour.</p>';
  const total = c.points.map((_, i) => order.reduce((sum, s) => sum + (c.states[s][i] || 0), 0));
  const top = Math.max(1, ...total);
  const x = (i) => (i / (n - 1)) * chartW, y = (v) => chartH - (v / top) * chartH;
  const base = new Array(n).fill(0);
  const paths = order.map((s) => {
    const lower = base.slice();
    c.states[s].forEach((v, i) => { base[i] += v || 0; });
    const up = base.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    const down = lower.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).reverse();
    return `<path class="area ${s}" d="M${up.join('L')}L${down.join('L')}Z"><title>${esc(plainNames[s])}</title></path>`;
  }).join('');
  const now = order.map((s) => `${c.states[s][n - 1]} ${plainNames[s].toLowerCase()}`).join(', ');
  return plot(`Machines per state over the last hour; now ${now}`, paths, top, ['1 hour ago', '30 min ago', 'now']);
}

function stateLegend(c) {
  return states.filter((s) => (c.states[s] || []).some((v) => v > 0)).map((s) =>
    `<span class="chip ${s}"><span aria-hidden="true">${stateGlyphs[s]}</span> ${esc(plainNames[s])}</span>`).join(' ');
}

// readySVG is how long machines took from power-on to ready, as columns.
function readySVG(r) {
  if (!r.machines) return '<p class="muted">No machine started and became ready in the last hour.</p>';
  const counts = r.histogram.counts, top = Math.max(...counts), w = chartW / counts.length, b = r.histogram.bucket_seconds;
  const bars = counts.map((v, i) => `<rect class="bar" x="${(i * w + 1).toFixed(1)}" y="${(chartH - (v / top) * chartH).toFixed(1)}" width="${Math.max(w - 2, 1).toFixed(1)}" height="${((v / top) * chartH).toFixed(1)}"><title>${v} machines in ${fmtSecs(i * b)}–${fmtSecs((i + 1) * b)}</title></rect>`).join('');
  return plot(readyCaption(r), bars, top, ['0', fmtSecs(counts.length * b / 2), fmtSecs(counts.length * b)]);
}

function readyCaption(r) {
  if (!r.machines) return 'Power-on to ready';
  return `Power-on to ready, ${r.machines} machines: half within ${fmtSecs(r.p50_seconds)}, 95 % within ${fmtSecs(r.p95_seconds)}, the slowest ${fmtSecs(r.max_seconds)}`;
}

function fmtSecs(s) { return s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`; }

// shareSVG is one bar split by share, each part in its colour, named in
// words beside it.
function shareSVG(what, counts, parts) {
  if (!counts) return '';
  const total = parts.reduce((sum, [k]) => sum + (counts[k] || 0), 0);
  if (!total) return `<p class="muted">No ${what} yet.</p>`;
  let at = 0;
  const shown = parts.filter(([k]) => counts[k]);
  const rects = shown.map(([k, word, cls]) => {
    const w = (counts[k] / total) * chartW, r = `<rect class="share ${cls}" x="${at.toFixed(1)}" y="0" width="${w.toFixed(1)}" height="24"><title>${counts[k]} ${word}</title></rect>`;
    at += w;
    return r;
  }).join('');
  const words = shown.map(([k, word]) => `${counts[k]} ${word}`).join(', ');
  return `<div class="share-plot"><svg viewBox="0 0 ${chartW} 24" preserveAspectRatio="none" role="img" aria-label="${esc(what)}: ${esc(words)}">${rects}</svg>
    <div class="ticks"><span>${esc(what)}: ${esc(words)}</span></div></div>`;
}

// stateTones colour the states in the charts' bars as the badges do.
const stateTones = {
  created: 'muted', hostinit: 'info', validation: 'info', hostreprovision: 'info', dpureprovision: 'info',
  ready: 'ok', assigned: 'ok', waitingforcleanup: 'warn', failed: 'bad', forcedeletion: 'bad',
};

// nowSVG is the boot's progress at a glance: machines per state now, in
// lifecycle order.
function nowSVG(c) {
  const n = c.points.length, counts = {};
  for (const st of states) counts[st] = n ? (c.states[st] || [])[n - 1] || 0 : 0;
  return shareSVG('Machines now', counts, states.map((st) => [st, plainNames[st].toLowerCase(), stateTones[st]]));
}

function leaseSVG(l) {
  if (!l) return '';
  return shareSVG('DHCP addresses', { active: l.active, free: l.pool_size - l.active }, [['active', 'in use', 'info'], ['free', 'free', 'muted']]);
}

// bridgeCard is the upstream bridge: up or down in words, what waits, why.
function bridgeCard(b) {
  const state = b.connected ? '<span class="ok">up</span>' : '<span class="error">down</span>';
  const waiting = b.backlog ? `, ${b.backlog} events waiting (${Math.round(b.lag_seconds)} s)` : '';
  const dropped = b.dropped ? `, <span class="error">${b.dropped} dropped</span>` : '';
  const why = !b.connected && b.last_error ? `<div class="error small">${esc(b.last_error)}</div>` : '';
  return `<div class="card" id="bridge"><div class="n">${state}</div><div class="k">uplink, site ${esc(b.site)}: ${esc(b.url)}${waiting}${dropped}</div>${why}</div>`;
}

// ---------- racks ----------

// A glyph per state, so that a tray's state never rests on colour alone.
const stateGlyphs = {
  created: '○', hostinit: '▸', validation: '↻', ready: '✓', assigned: '●', hostreprovision: '↻',
  dpureprovision: '↻', waitingforcleanup: '…', failed: '✕', forcedeletion: '⌫',
};
const trayTypeMarks = { switch: '⇄', powershelf: 'ϟ' };
const bmcMarks = { unusable: '!', new: '?', none: '' , reachable: '' };
const bmcWords = { unusable: 'BMC unusable', new: 'BMC not polled yet', none: 'no BMC', reachable: 'BMC reachable' };

// rackGroup is the part of a rack's id before its last separator
// ("fra1-r12" is in "fra1"): a site's rows or rooms, as it names them.
function rackGroup(id) {
  const m = String(id).match(/^(.*)[-_.:/][^-_.:/]*$/);
  return m ? m[1] : 'racks';
}

// trayDetails are what a tray says beyond its name, in words.
function trayDetails(t) {
  const parts = [(plainNames[t.state] || t.state) + ` (${t.state})`];
  if (t.racked) parts.push((t.tray === undefined ? 'no tray given' : `tray ${t.tray}`) + (t.tray_type && t.tray_type !== 'compute' ? ` (${t.tray_type})` : ''));
  parts.push(t.ip ? 'IP ' + t.ip : 'no lease');
  parts.push(t.last_heartbeat ? 'last heartbeat ' + relative(new Date(t.last_heartbeat)) : 'no heartbeat yet');
  parts.push(bmcWords[t.bmc] || t.bmc);
  if (t.tasks_running) parts.push(`${t.tasks_running} task${t.tasks_running > 1 ? 's' : ''} running`);
  return parts;
}

function trayTip(t) { return [t.hostname || t.machine_id, ...trayDetails(t)].join(' · '); }

// trayWords are the details a screen reader hears after the tray's name.
function trayWords(t) { return ' · ' + trayDetails(t).join(' · '); }

function trayClass(t) { return `tray ${t.state}${t.bmc === 'unusable' ? ' bmc-bad' : ''}${t.inBatch ? ' in-batch' : ''}`; }
function trayMarks(t) { return (trayTypeMarks[t.tray_type] || '') + (bmcMarks[t.bmc] || '') + (t.tasks_running ? '⟳' : ''); }

// trayHTML is one tray: a link to its machine, its state in colour and
// glyph, its type, its BMC and its running tasks marked.
// A screen reader hears the name it shows, then the rest in words.
function trayHTML(t) {
  return `<a class="${esc(trayClass(t))}" href="#/machines/${encodeURIComponent(t.machine_id)}" data-id="${esc(t.machine_id)}" tabindex="-1">` +
    `<span class="slot" aria-hidden="true">${t.racked && t.tray !== undefined ? t.tray : ''}</span><span class="g" aria-hidden="true">${stateGlyphs[t.state] || '?'}</span>` +
    `<span class="name">${esc(t.hostname || t.machine_id)}</span><span class="sr">${esc(trayWords(t))}</span>` +
    `<span class="marks" aria-hidden="true">${esc(trayMarks(t))}</span></a>`;
}


// paintTray brings a drawn tray up to date in place (a live event).
function paintTray(el, t) {
  el.className = trayClass(t);
  el.querySelector('.sr').textContent = trayWords(t);
  el.querySelector('.g').textContent = stateGlyphs[t.state] || '?';
  el.querySelector('.marks').textContent = trayMarks(t);
}

function racksView(params) {
  let q = params.get('q') || '', state = params.get('state') || '';
  let compact = params.get('view') ? params.get('view') === 'compact' : null; // null: by size
  main.innerHTML = `<h1>Racks</h1>
    <form class="filters" id="rf" role="search">
      <label>Find <input name="q" value="${esc(q)}" placeholder="machine, hostname, IP, rack" autocomplete="off"></label>
      <label>State <select name="state"><option value="">any</option>${states.map((s) => `<option value="${s}" ${s === state ? 'selected' : ''}>${esc(plainNames[s])} (${s})</option>`).join('')}</select></label>
      <label>Show <select name="view"><option value="">by size</option><option value="detail">names</option><option value="compact">compact</option></select></label>
    </form>
    <div id="legend" class="legend" aria-label="States"></div>
    <div id="rack-batches"></div>
    <div id="racks" aria-live="off">Loading…</div>
    <div id="tip" class="tip" role="tooltip" hidden></div>`;
  if (compact !== null) $('select[name=view]', main).value = compact ? 'compact' : 'detail';
  const trays = new Map(); // machine id → {t, el}
  let data = null;

  const matches = (t, rackId) => {
    if (state && t.state !== state) return false;
    if (!q) return true;
    const needle = q.toLowerCase();
    return [t.machine_id, t.hostname, t.ip, rackId].some((v) => v && String(v).toLowerCase().includes(needle));
  };
  const legend = () => {
    const counts = {};
    for (const t of data.byId.values()) counts[t.state] = (counts[t.state] || 0) + 1;
    $('#legend').innerHTML = states.filter((s) => counts[s]).map((s) =>
      `<a href="#/?state=${s}" class="chip ${s}"><span aria-hidden="true">${stateGlyphs[s]}</span> ${esc(plainNames[s])} <b>${counts[s]}</b></a>`).join('') +
      '<span class="muted small">⇄ switch · ϟ power shelf · ! BMC unusable · ? BMC not polled · ⟳ task running</span>';
  };
  const draw = () => {
    trays.clear();
    const small = compact === null ? data.racks.length > 24 : compact;
    const rackHTML = (r) => {
      const shown = r.trays.filter((t) => matches(t, r.rack_id));
      if (!shown.length) return '';
      const failed = shown.filter((t) => t.state === 'failed').length;
      return `<section class="rack" aria-label="Rack ${esc(r.rack_name || r.rack_id)}, ${shown.length} trays${failed ? `, ${failed} failed` : ''}">
        <h2 title="${esc(r.rack_name || r.rack_id)}">${esc(small ? String(r.rack_id).split(/[-_.:/]/).pop() : r.rack_name || r.rack_id)}${failed ? ` <span class="error">${failed}✕</span>` : ''}</h2>
        <div class="trays">${shown.map(trayHTML).join('')}</div></section>`;
    };
    const groups = new Map();
    for (const r of data.racks) {
      const g = rackGroup(r.rack_id);
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(r);
    }
    let html = '';
    for (const [g, rs] of groups) {
      const inner = rs.map(rackHTML).join('');
      if (!inner) continue;
      const body = `<div class="rackrow">${inner}</div>`;
      html += groups.size > 1 ? `<details open class="rackgroup"><summary>${esc(g)} <span class="muted">${rs.length} racks</span></summary>${body}</details>` : body;
    }
    const loose = data.unracked.filter((t) => matches(t, ''));
    if (loose.length) {
      html += `<section class="rack loose" aria-label="Not in a rack, ${loose.length} machines"><h2>Not in a rack</h2><div class="trays">${loose.map(trayHTML).join('')}</div></section>`;
    }
    if (!data.machines_total) {
      html = `<div class="panel empty"><p><b>No machines yet.</b></p><p class="muted">A machine appears here when it first netboots, or when it is listed under
        <code>machines:</code> in the configuration; give it <code>rack: {id: r1, tray: 3}</code> to place it in its rack.</p></div>`;
    } else if (!html) {
      html = '<p class="muted">No machine matches. Clear the search or the state filter.</p>';
    }
    const box = $('#racks');
    box.className = small ? 'compact' : 'detail';
    box.innerHTML = html;
    for (const el of box.querySelectorAll('.tray')) {
      const t = data.byId.get(el.dataset.id);
      if (t) trays.set(t.machine_id, { t, el });
    }
    // One tab stop per rack; the arrows move within a rack (up, down) and
    // across racks (left, right), so that 10,000 trays are not 10,000 tabs.
    for (const col of box.querySelectorAll('.trays')) col.firstElementChild.tabIndex = 0;
    legend();
  };
  // Tasks change trays' marks in place: the running ones, and NICo's
  // firmware batches under way, each summed up above the racks with its
  // trays outlined. (A reload of every rack per task event would read the
  // whole site again while a batch of thousands runs.)
  // The server counts them as it counts the racks' own (every unfinished
  // task, every member of a batch under way), so the two never disagree.
  const batches = async () => {
    const marks = await api('GET', '/racks/tasks');
    const inBatch = marks.batch_tasks;
    $('#rack-batches').innerHTML = batchSummaries(inBatch);
    const marked = new Set(inBatch.map((t) => t.machine_id));
    for (const { t, el } of trays.values()) {
      const n = marks.running[t.machine_id] || 0, inBatch = marked.has(t.machine_id);
      if (n !== (t.tasks_running || 0) || inBatch !== Boolean(t.inBatch)) {
        Object.assign(t, { tasks_running: n, inBatch });
        paintTray(el, t);
      }
    }
  };
  const load = async () => {
    data = await api('GET', '/racks');
    data.byId = new Map();
    for (const r of data.racks) for (const t of r.trays) { t.racked = true; data.byId.set(t.machine_id, t); }
    for (const t of data.unracked) data.byId.set(t.machine_id, t);
    draw();
    window.racksDrawnAt = performance.now();
    await batches();
  };

  // Live: events change trays in place, gathered per animation frame, so
  // that a storm's thousands a second cost one layout each frame.
  const pending = new Map();
  let frame = 0;
  const apply = () => {
    frame = 0;
    for (const [id, change] of pending) {
      const hit = trays.get(id) || { t: data && data.byId.get(id) };
      if (!hit.t) { reload(); continue; } // a machine new since the load
      Object.assign(hit.t, change);
      if (hit.el) paintTray(hit.el, hit.t);
    }
    pending.clear();
    legendSoon();
    window.racksUpdates = (window.racksUpdates || 0) + 1;
  };
  const change = (id, what) => {
    if (!id || !data) return;
    pending.set(id, Object.assign(pending.get(id) || {}, what));
    if (!frame) frame = requestAnimationFrame(apply);
  };
  const legendSoon = throttle(legend, 500);
  const reload = throttle(() => load().catch(() => {}), 3000);
  const offs = [
    on('state', (ev) => { const m = ev.message; if (m) change(m.machine_id, { state: m.managed_host_state && m.managed_host_state.state }); }),
    on('onboarding', (ev) => { const m = ev.message; if (m) change(m.machine_id, { last_heartbeat: m.timestamp }); }),
    on('bmc', (ev) => { const b = ev.message; if (b && b.machine_id) change(b.machine_id, { bmc: b.last_error ? 'unusable' : b.reachable ? 'reachable' : 'new' }); }),
    on('task', throttle(() => batches().catch(() => {}), 1000)),
    on('overflow', reload),
  ];

  // The tooltip: state, IP and last heartbeat on hover or keyboard focus.
  const tip = $('#tip');
  const show = (e) => {
    const el = e.target.closest && e.target.closest('.tray');
    if (!el) { tip.hidden = true; return; }
    const t = data && data.byId.get(el.dataset.id);
    if (!t) return;
    tip.textContent = trayTip(t);
    tip.hidden = false;
    const r = el.getBoundingClientRect();
    tip.style.left = `${Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 8)}px`;
    tip.style.top = `${window.scrollY + r.bottom + 4}px`;
  };
  const box = $('#racks');
  box.addEventListener('keydown', (e) => {
    const el = e.target.closest && e.target.closest('.tray');
    if (!el) return;
    const col = el.parentElement, i = [...col.children].indexOf(el);
    let to = null;
    if (e.key === 'ArrowDown') to = el.nextElementSibling;
    else if (e.key === 'ArrowUp') to = el.previousElementSibling;
    else if (e.key === 'Home') to = col.firstElementChild;
    else if (e.key === 'End') to = col.lastElementChild;
    else if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const cols = [...box.querySelectorAll('.trays')], c = cols.indexOf(col) + (e.key === 'ArrowRight' ? 1 : -1);
      if (cols[c]) to = cols[c].children[Math.min(i, cols[c].children.length - 1)];
    }
    if (!to) return;
    e.preventDefault();
    el.tabIndex = -1;
    to.tabIndex = 0;
    to.focus();
  });
  box.addEventListener('mouseover', show);
  box.addEventListener('focusin', show);
  box.addEventListener('mouseleave', () => { tip.hidden = true; });
  box.addEventListener('focusout', () => { tip.hidden = true; });

  watchFilters($('#rf'), 200, '#/', (f) => {
    q = f.get('q') || '';
    state = f.get('state') || '';
    const v = f.get('view') || '';
    compact = v ? v === 'compact' : null;
    if (data) draw();
  });
  load().catch((e) => toast(e.message, true));
  return () => { offs.forEach((f) => f()); if (frame) cancelAnimationFrame(frame); };
}

// ---------- machines ----------

function machinesView(params) {
  let q = params.get('q') || '', state = params.get('state') || '';
  main.innerHTML = `<h1>Machines</h1>
    <form class="filters" id="filters" role="search">
      <label>Search <input name="q" value="${esc(q)}" placeholder="id, hostname, MAC, rack" autocomplete="off"></label>
      <label>State <select name="state"><option value="">any</option>${states.map((s) => `<option value="${s}" ${s === state ? 'selected' : ''}>${esc(plainNames[s])} (${s})</option>`).join('')}</select></label>
    </form>
    <div class="table-wrap"><table><thead><tr><th>Machine</th><th>Hostname</th><th class="hide-narrow">Rack</th><th class="hide-narrow">MACs</th><th>IP</th><th>State</th><th class="hide-narrow">Since</th><th class="hide-narrow">Last heartbeat</th><th>Power</th></tr></thead>
    <tbody id="rows"><tr><td colspan="9">Loading…</td></tr></tbody></table></div>
    <div class="pager"><button id="first" type="button">First page</button><button id="next" type="button">Next page</button><span id="count" class="muted"></span></div>`;
  let pages = [''], next = null;
  const rows = new Map();
  const query = (after) => {
    const p = new URLSearchParams({ limit: '50' });
    if (q) p.set('q', q);
    if (state) p.set('state', state);
    if (after) p.set('after', after);
    return '/machines?' + p;
  };
  const load = async (after) => {
    const page = await api('GET', query(after));
    next = page.next ? new URL(page.next, location.origin).searchParams.get('after') : null;
    rows.clear();
    $('#rows').innerHTML = page.machines.map((m) => `<tr data-id="${esc(m.machine_id)}">
      <td><a href="#/machines/${encodeURIComponent(m.machine_id)}">${esc(m.machine_id)}</a></td><td>${esc(m.hostname)}</td>
      <td class="hide-narrow">${m.rack ? esc(m.rack.rack_id + (m.rack.tray === undefined ? '' : ' / ' + m.rack.tray)) : ''}</td><td class="mono hide-narrow">${esc((m.macs || []).join(' '))}</td>
      <td class="mono">${esc(m.ip)}</td><td class="state">${stateBadge(m.managed_host_state)}</td><td class="hide-narrow since">${when(m.state_since)}</td>
      <td class="hide-narrow hb">${when(m.last_heartbeat)}</td><td class="power">${esc(m.power_state)}</td></tr>`).join('') || '<tr><td colspan="9" class="muted">No machine matches.</td></tr>';
    for (const m of page.machines) rows.set(m.machine_id, $(`tr[data-id="${CSS.escape(m.machine_id)}"]`));
    $('#next').disabled = !next;
    $('#first').disabled = pages.length === 1;
    $('#count').textContent = `page ${pages.length}, ${page.machines.length} shown`;
  };
  watchFilters($('#filters'), 300, '#/machines', (f) => {
    q = f.get('q') || '';
    state = f.get('state') || '';
    pages = [''];
    load('').catch((e) => toast(e.message, true));
  });
  $('#next').addEventListener('click', () => { pages.push(next); load(next).catch((e) => toast(e.message, true)); });
  $('#first').addEventListener('click', () => { pages = ['']; load('').catch((e) => toast(e.message, true)); });
  load('').catch((e) => toast(e.message, true));
  const offs = [
    on('state', (ev) => {
      const m = ev.message, tr = m && rows.get(m.machine_id);
      if (tr) {
        $('.state', tr).innerHTML = stateBadge(m.managed_host_state);
        $('.since', tr).innerHTML = when(m.timestamp);
      }
    }),
    on('onboarding', (ev) => {
      const m = ev.message, tr = m && rows.get(m.machine_id);
      if (tr) $('.hb', tr).innerHTML = when(m.timestamp);
    }),
    on('bmc', (ev) => {
      const b = ev.message, tr = b && rows.get(b.machine_id);
      if (tr) $('.power', tr).textContent = (b.inventory || {}).power_state || '';
    }),
  ];
  return () => offs.forEach((f) => f());
}

// ---------- one machine ----------

function machineView(id) {
  main.innerHTML = `<h1>Machine <span class="mono">${esc(id)}</span> <span id="st"></span></h1>
    <div id="cause"></div>
    <div id="actions" class="panel actions" aria-label="Actions"></div>
    <div class="grid2">
      <section class="panel"><h2>Onboarding</h2><div id="onb-status"></div><div id="onb-stages" class="muted">No heartbeat yet.</div></section>
      <section class="panel"><h2>Inventory</h2><div id="inv" class="muted">No BMC linked.</div></section>
    </div>
    <section class="panel"><h2>Tasks</h2><div id="tasks" class="muted">None.</div></section>
    <div class="grid2">
      <section class="panel"><h2>Boot actions</h2><div id="bootactions" class="muted">No deployment from a site design.</div></section>
      <section class="panel"><h2>Build data</h2><div id="builddata" class="muted">None collected.</div></section>
    </div>
    <section><h2>State timeline</h2><div class="table-wrap"><table><thead><tr><th>When</th><th>From</th><th>To</th><th>Cause</th></tr></thead><tbody id="hist"></tbody></table></div></section>`;
  let machine = null, bmc = null, actionsShown = false;
  const loadMachine = async () => {
    const d = await api('GET', `/machines/${encodeURIComponent(id)}`);
    machine = d.machine;
    $('#st').innerHTML = stateBadge(machine.managed_host_state) + (machine.ip ? ` <span class="muted mono">${esc(machine.ip)}</span>` : '');
    $('#hist').innerHTML = d.history.slice().reverse().map((h) => `<tr><td>${when(h.at)}</td><td>${esc(h.from)}</td><td>${stateBadge(h.managed_host_state)}</td><td>${esc(h.cause)}</td></tr>`).join('');
    $('#onb-status').innerHTML = onboardingStatus(machine.managed_host_state);
    $('#cause').innerHTML = failureCallout(machine.managed_host_state);
  };
  const loadStages = async () => {
    // Drawn whole each time: a live update replaces the list, never adds to it.
    let html = '';
    for (const mac of (machine && machine.macs) || []) {
      const r = await fetch('/clients/' + mac); // MACs are URL-safe; the route takes them as they are
      if (!r.ok) continue;
      const stages = (await r.json()).stages || [];
      if (stages.length) html += `<ol class="mono">${stages.slice(-8).map((s) => `<li>${esc(s.stage)}/${esc(s.phase)} ${esc(s.detail || '')}</li>`).join('')}</ol>`;
    }
    const el = $('#onb-stages');
    el.innerHTML = html || 'No heartbeat yet.';
    el.classList.toggle('muted', !html);
  };
  const loadBMC = async () => {
    const list = await api('GET', '/bmcs?machine_id=' + encodeURIComponent(id));
    bmc = list.bmcs[0] || null;
    if (!bmc) return;
    const i = bmc.inventory || {};
    $('#inv').innerHTML = `<dl><dt>BMC</dt><dd><a href="#/bmcs">${esc(bmc.bmc_id)}</a> ${bmcBadge(bmc)}</dd>
      ${bmc.last_error ? `<dt>Error</dt><dd class="error">${esc(bmc.last_error)}</dd>` : ''}
      <dt>Power</dt><dd id="power">${esc(i.power_state)}</dd><dt>Model</dt><dd>${esc(i.manufacturer)} ${esc(i.model)}</dd>
      <dt>Serial</dt><dd class="mono">${esc(i.serial)}</dd><dt>BIOS</dt><dd>${esc(i.bios_version)}</dd><dt>BMC firmware</dt><dd>${esc(i.bmc_version)}</dd></dl>
      ${(i.firmware || []).length ? `<h2>Firmware</h2><table><thead><tr><th>Component</th><th>Version</th></tr></thead><tbody>${i.firmware.map((f) => `<tr><td>${esc(f.id)}</td><td>${esc(f.version)}</td></tr>`).join('')}</tbody></table>` : ''}`;
    // Once: re-drawing the buttons on every BMC status would pull them
    // from under the operator's pointer.
    if (!actionsShown) renderActions();
  };
  const loadTasks = async () => {
    const t = await api('GET', '/tasks?machine_id=' + encodeURIComponent(id));
    if (t.tasks.length) $('#tasks').innerHTML = taskTable(t.tasks);
    await Promise.all([loadBootActions(), loadBuildData()]);
  };
  // A site design's deployment: each boot action's status and the node's
  // last messages; and what was collected about the node.
  const loadBootActions = async () => {
    const list = (await api('GET', `/machines/${encodeURIComponent(id)}/bootactions`)).boot_actions;
    if (!list.length) return;
    const tone = { success: 'ok', failure: 'bad', incomplete: 'warn', unreported: '' };
    const el = $('#bootactions');
    el.classList.remove('muted');
    el.innerHTML = `<table><thead><tr><th>Action</th><th>Status</th><th>Last message</th></tr></thead><tbody>
      ${list.map((a) => { const d = a.details[a.details.length - 1]; return `<tr><td>${esc(a.name)}<br><span class="muted mono">${esc(a.action_id)}</span></td>
        <td>${badge(a.status, `${a.status} ${tone[a.status]}`)}</td><td class="${d && d.error ? 'error' : ''}">${d ? esc(d.message) : '<span class="muted">none yet</span>'}</td></tr>`; }).join('')}
      </tbody></table>`;
  };
  const loadBuildData = async () => {
    const list = (await api('GET', `/machines/${encodeURIComponent(id)}/builddata`)).build_data;
    if (!list.length) return;
    const el = $('#builddata');
    el.classList.remove('muted');
    el.innerHTML = list.map((b) => `<details><summary>${esc(b.generator)} <span class="muted">${esc(b.data_format)}, ${when(b.collected_at)}</span></summary>
      <pre class="mono">${esc(b.data)}</pre></details>`).join('');
  };
  const renderActions = () => {
    const el = $('#actions');
    actionsShown = true;
    const op = may('operator') ? '' : 'disabled title="needs the operator role"';
    el.innerHTML = (bmc
      ? `<button class="primary" id="provision" ${op}>Provision (PXE once, power cycle)</button>
      <button data-power="on" ${op}>Power on</button><button data-power="restart" ${op}>Restart</button>
      <button data-power="shutdown" ${op}>Shut down</button><button class="danger" data-power="off" ${op}>Power off</button>`
      : `<button class="primary" id="provision" ${op}>Provision at its next network boot</button>`) +
      `<button id="reset-hb" ${op}>Reset heartbeats</button>
      ${bmc && may('admin') ? '<span id="fw"></span>' : ''}
      ${bmc ? '' : '<span class="muted">No BMC is linked: power actions need one.</span>'}`;
    $('#provision').addEventListener('click', async () => {
      const how = bmc ? 'Its BMC will netboot it once and power-cycle it.' : 'It has no BMC: it installs at its next network boot, which you start.';
      if (!confirm(`Reinstall ${id}? ${how} Its disk will be overwritten.`)) return;
      try {
        const r = await api('POST', `/machines/${encodeURIComponent(id)}/provision`, {});
        toast(r.provisioned.boot_target ? `Provisioning ${id}: one-time ${r.provisioned.boot_target} boot, ${r.provisioned.reset_type}.` : `${id} installs at its next network boot.`);
      } catch (e) { toast(e.message, true); }
    });
    $('#reset-hb').addEventListener('click', async () => {
      if (!confirm(`Forget ${id}'s onboarding heartbeats? Its state timeline stays.`)) return;
      try { const r = await api('DELETE', `/machines/${encodeURIComponent(id)}/heartbeats`); toast(`${r.heartbeats_forgotten} heartbeats forgotten.`); loadMachine().catch(() => {}); } catch (e) { toast(e.message, true); }
    });
    for (const b of el.querySelectorAll('[data-power]')) {
      b.addEventListener('click', async () => {
        // All but power on interrupt whatever the machine is doing.
        if (b.dataset.power !== 'on' && !confirm(`${b.textContent} ${id}? Whatever it runs is interrupted.`)) return;
        try { const r = await api('POST', `/bmcs/${encodeURIComponent(bmc.bmc_id)}/power`, { action: b.dataset.power }); toast(`${b.textContent}: ${r.reset_type} sent.`); } catch (e) { toast(e.message, true); }
      });
    }
    if (may('admin')) firmwarePicker($('#fw'));
  };
  const firmwarePicker = async (el) => {
    // Only images for components this machine's BMC reports.
    const have = new Set(((bmc.inventory || {}).firmware || []).map((f) => f.id));
    const imgs = (await api('GET', '/firmware')).images.filter((m) => have.has(m.component));
    if (!imgs.length) return;
    el.innerHTML = `<label>Firmware <select id="img">${imgs.map((m) => `<option value="${esc(m.image_id)}">${esc(m.component)} ${esc(m.version)}</option>`).join('')}</select></label> <button id="update">Update firmware</button>`;
    $('#update').addEventListener('click', async () => {
      const img = $('#img').selectedOptions[0].textContent;
      if (!confirm(`Flash ${img} onto ${id}? The machine may restart while its BMC applies it.`)) return;
      try { const t = await api('POST', `/machines/${encodeURIComponent(id)}/firmware`, { image_id: $('#img').value }); toast(`Firmware update ${t.task_id.slice(0, 8)} queued.`); loadTasks(); } catch (e) { toast(e.message, true); }
    });
  };
  const all = async () => { await loadMachine(); await Promise.all([loadStages(), loadBMC(), loadTasks()]); if (!actionsShown) renderActions(); };
  all().catch((e) => toast(e.message, true));
  const offs = [
    on('state', (ev) => { if (ev.message && ev.message.machine_id === id) loadMachine().catch(() => {}); }),
    on('onboarding', (ev) => { if (ev.message && ev.message.machine_id === id) loadMachine().then(loadStages).catch(() => {}); }),
    on('bmc', (ev) => { if (ev.message && ev.message.machine_id === id) loadBMC().catch(() => {}); }),
    on('task', (ev) => { if (ev.message && ev.message.machine_id === id) loadTasks().catch(() => {}); }),
  ];
  return () => offs.forEach((f) => f());
}

// onboardingStatus sums up a machine's state for the onboarding panel:
// its install's progress, done, or why it failed.
function onboardingStatus(st) {
  const v = st.validation_state;
  const run = v && v.machine_validation && v.machine_validation.machinevalidating;
  if (run) return `<p>Installing: <b>${esc(run.context)}</b>, ${run.completed} of ${run.total} stages done</p>${bar(100 * run.completed / run.total)}`;
  if (st.state === 'ready') return `<p>Onboarded.</p>${bar(100)}`;
  if (st.state === 'failed') return '<p>Failed: why is at the top of the page.</p>';
  return '';
}

// failureCallout is a failed machine's cause, shown at the top of its page.
function failureCallout(st) {
  if (!st || st.state !== 'failed') return '';
  const d = st.details || {};
  const cause = typeof d.cause === 'string' ? { kind: d.cause, err: '' } : Object.entries(d.cause || {}).map(([kind, v]) => ({ kind, err: (v || {}).err }))[0] || {};
  return `<div class="callout bad" role="alert"><b>Failed</b> (${esc(cause.kind || 'unknown cause')})${cause.err ? `: ${esc(cause.err)}` : ''}
    ${d.failed_at ? `<br><span class="muted">at ${when(d.failed_at)}</span>` : ''}<br>Provision it to install again.</div>`;
}

// ---------- BMCs, tasks, users ----------

// bmcBadge says how a BMC answers: not polled yet, unusable (its error),
// reachable with parts missing, or reachable.
function bmcBadge(b) {
  if (b.last_error) return badge('unusable', 'bad');
  if (!b.polled) return badge('not polled yet', 'warn');
  if (((b.inventory || {}).missing || []).length) return badge('partial', 'warn');
  return badge('reachable', 'ok');
}

function bmcsView() {
  main.innerHTML = `<h1>BMCs</h1>
    ${may('admin') ? `<details class="panel" id="register-panel"><summary>Register a BMC</summary>
      <form class="inline" id="register"><label>Endpoint <input name="endpoint" required placeholder="https://10.88.1.10"></label>
      <label>User <input name="username" required autocomplete="off"></label>
      <label>Password <input name="password" type="password" required autocomplete="new-password"></label>
      <label>Machine <input name="machine_id" placeholder="found by its MACs if left out"></label>
      <label class="check"><input name="insecure_skip_verify" type="checkbox"> its certificate is self-signed</label>
      <button class="primary" type="submit">Register</button></form>
      <p class="muted small">The password is kept sealed on the box and never shown again. BMCs listed in the configuration change there.</p></details>` : ''}
    <div class="table-wrap"><table><thead><tr><th>BMC</th><th>Machine</th><th>Status</th><th>Power</th><th class="hide-narrow">Model</th><th class="hide-narrow">BMC firmware</th><th>Last error</th><th></th></tr></thead><tbody id="rows"></tbody></table></div>`;
  const form = $('#register');
  if (form) {
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      try {
        const b = await api('POST', '/bmcs', { endpoint: f.get('endpoint'), username: f.get('username'), password: f.get('password'),
          machine_id: f.get('machine_id') || '', insecure_skip_verify: f.get('insecure_skip_verify') === 'on' });
        toast(`BMC ${b.bmc_id} registered; its first poll is under way.`);
        form.reset();
        load().catch(() => {});
      } catch (err) { toast(err.message, true); }
    });
  }
  $('#rows').addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-remove]');
    if (!btn || !confirm(`Remove BMC ${btn.dataset.remove}? Slipway stops polling it and forgets its credentials; the machine stays.`)) return;
    try { await api('DELETE', '/bmcs/' + encodeURIComponent(btn.dataset.remove)); toast('BMC removed.'); load().catch(() => {}); } catch (err) { toast(err.message, true); }
  });
  const load = async () => {
    const list = (await api('GET', '/bmcs')).bmcs;
    $('#rows').innerHTML = list.map((b) => `<tr><td class="mono">${esc(b.bmc_id)}<br><span class="muted">${esc(b.endpoint)}</span></td>
      <td>${b.machine_id ? `<a href="#/machines/${encodeURIComponent(b.machine_id)}">${esc(b.machine_id)}</a>` : ''}</td>
      <td>${bmcBadge(b)}${(b.inventory || {}).auth ? ` <span class="muted">${esc(b.inventory.auth)} auth</span>` : ''}</td>
      <td>${esc((b.inventory || {}).power_state)}</td><td class="hide-narrow">${esc((b.inventory || {}).model)}</td>
      <td class="hide-narrow">${esc((b.inventory || {}).bmc_version)}</td><td class="error">${esc(b.last_error || ((b.inventory || {}).missing || []).join('; '))}</td>
      <td>${b.source === 'api' && may('admin') ? `<button type="button" class="danger" data-remove="${esc(b.bmc_id)}">Remove</button>` : ''}</td></tr>`).join('') || '<tr><td colspan="8" class="muted">No BMC registered. Give a machine its <code>bmc:</code> in the configuration, register one with <code>POST /api/v1/bmcs</code>, or let BMCs that take a DHCP lease be found (<code>bmc.discovery</code>; docs/bmc.md).</td></tr>';
  };
  load().catch((e) => toast(e.message, true));
  return on('bmc', throttle(() => load().catch(() => {}), 500));
}

// designsView shows the Drydock site designs on the box: whether each is
// valid, its nodes (linked to their machines), its boot actions and every
// problem found, where; an admin uploads one from a file.
function designsView() {
  main.innerHTML = `<h1>Site designs</h1>
    <p class="muted">Drydock's documents (drydock/BaremetalNode/v1, HostProfile, BootAction, Rack…). Drydock's own client deploys them
      as <code>design_ref slipway:&lt;name&gt;</code>; see docs/drydock.md.</p>
    ${may('admin') ? `<form class="inline panel" id="upload"><label>Name <input name="name" required pattern="[A-Za-z0-9._-]+" placeholder="site"></label>
      <label>YAML file <input name="file" type="file" accept=".yaml,.yml,application/yaml,text/yaml" required></label>
      <button class="primary" type="submit">Upload</button></form>` : ''}
    <div id="designs">Loading…</div>`;
  const load = async () => {
    const names = (await api('GET', '/designs')).designs;
    if (!names.length) {
      $('#designs').innerHTML = `<div class="panel empty"><p><b>No site design yet.</b></p><p class="muted">Upload one here or with
        <code>curl -u admin -X PUT --data-binary @site.yaml …/api/v1/designs/site</code>, then deploy it with Drydock's client:
        <code>drydock task create -d slipway:site -a deploy_nodes</code>.</p></div>`;
      return;
    }
    const designs = await Promise.all(names.map((n) => api('GET', '/designs/' + encodeURIComponent(n))));
    $('#designs').innerHTML = designs.map(designPanel).join('');
  };
  const form = $('#upload');
  if (form) {
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form), name = f.get('name'), text = await f.get('file').text();
      try {
        const d = await api('PUT', '/designs/' + encodeURIComponent(name), text);
        toast(d.valid ? `Design ${name} uploaded: ${d.nodes.length} nodes.` : `Design ${name} uploaded with ${d.problems.length} problems: see below.`, !d.valid);
        form.reset();
        await load();
      } catch (err) { toast(err.message, true); }
    });
  }
  load().catch((e) => toast(e.message, true));
  return () => {};
}

function designPanel(d) {
  const problems = d.problems.length ? `<div class="table-wrap"><table><thead><tr><th>Level</th><th>Document</th><th>Field</th><th>Problem</th></tr></thead><tbody>
    ${d.problems.map((p) => `<tr><td>${badge(p.level, p.level === 'Error' ? 'bad' : 'warn')}</td><td class="mono">${esc(p.schema)} ${esc(p.document)}</td>
      <td class="mono">${esc(p.field)}</td><td>${esc(p.message)}</td></tr>`).join('')}</tbody></table></div>` : '';
  return `<section class="panel design"><h2><span class="mono">${esc(d.design_ref)}</span> ${d.valid ? badge('valid', 'ok') : badge('has errors', 'bad')}</h2>
    <dl><dt>Nodes</dt><dd>${d.nodes.map((n) => `<a href="#/machines/${encodeURIComponent(n)}">${esc(n)}</a>`).join(', ') || '<span class="muted">none</span>'}</dd>
    <dt>Boot actions</dt><dd>${d.boot_actions.map(esc).join(', ') || '<span class="muted">none</span>'}</dd></dl>${problems}</section>`;
}

// releasesView shows the OS releases on the box (uploaded through USM's
// API) and the deploy in progress, host by host, live.
function releasesView() {
  main.innerHTML = `<h1>Releases</h1><section class="panel" id="deploy" aria-live="polite">Loading…</section>
    <div class="table-wrap"><table><thead><tr><th>Release</th><th>Version</th><th>State</th><th class="hide-narrow">Summary</th><th class="hide-narrow">Signed by</th><th class="hide-narrow">Uploaded</th></tr></thead><tbody id="rows"></tbody></table></div>`;
  const tone = { available: 'ok', deployed: 'ok', committed: 'ok', deploying: 'warn', removing: 'warn', unavailable: '', 'upload-failed': 'bad' };
  const hostTone = (s) => (/failed/.test(s) ? 'bad' : /deployed$/.test(s) ? 'ok' : /deploying/.test(s) ? 'warn' : '');
  const load = async () => {
    const [rels, cur] = await Promise.all([api('GET', '/releases'), api('GET', '/deploy')]);
    $('#rows').innerHTML = rels.releases.map((r) => `<tr><td class="mono">${esc(r.release_id)}</td><td>${esc(r.sw_version)}</td>
      <td>${badge(r.state, tone[r.state] || '')}</td><td class="hide-narrow">${esc(r.summary)}</td>
      <td class="hide-narrow mono">${esc(r.signer.slice(-16))}</td><td class="hide-narrow">${when(r.created_at)}</td></tr>`).join('') ||
      '<tr><td colspan="6" class="muted">No release yet: upload a signed one through USM\'s API (see docs/usm.md).</td></tr>';
    const d = cur.deploy;
    $('#deploy').innerHTML = !d ? '<h2>No deploy in progress</h2><p class="muted">Start one with <code>software deploy start RELEASE</code> against this box\'s USM port.</p>'
      : `<h2>Deploy of <span class="mono">${esc(d.release_id)}</span> ${badge('deploy-' + d.state, /failed/.test(d.state) ? 'bad' : /done|completed/.test(d.state) ? 'ok' : 'warn')}</h2>
        <p class="muted">${esc(d.from_release || 'no release')} → ${esc(d.to_release)}</p>
        <ol class="trays">${d.hosts.map((h) => `<li><a href="#/machines/${encodeURIComponent(h.machine_id)}">${esc(h.hostname)}</a>
          ${badge(h.host_state, hostTone(h.host_state))} <span class="muted">runs ${esc(h.software_release || 'its profile')}</span>
          ${h.error ? `<span class="error">${esc(h.error)}</span>` : ''}</li>`).join('')}</ol>`;
  };
  load().catch((e) => toast(e.message, true));
  const reload = throttle(() => load().catch(() => {}), 300);
  const offUSM = on('usm', reload);
  const offTask = on('task', reload);
  return () => { offUSM(); offTask(); };
}

// kindName is a task kind as people say it: a site design's actions are
// Drydock's.
function kindName(kind) {
  const m = /^deploy\/([a-z_]+)(\/node)?$/.exec(kind);
  if (kind === 'dpu-reprovision') return 'DPU reprovisioning';
  if (kind.startsWith('usm/')) return `USM ${kind.slice(4)}`;
  return m ? `Drydock ${m[1]}${m[2] ? ' (node)' : ''}` : kind;
}

function taskTable(tasks) {
  return `<div class="table-wrap"><table><thead><tr><th>Task</th><th>Kind</th><th>Machine</th><th>Step</th><th>Progress</th><th>Status</th><th>Message</th></tr></thead><tbody>
    ${tasks.map((t) => `<tr><td class="mono">${esc(t.task_id.slice(0, 8))}</td><td>${esc(kindName(t.kind))}</td><td>${t.machine_id ? `<a href="#/machines/${encodeURIComponent(t.machine_id)}">${esc(t.machine_id)}</a>` : ''}</td>
      <td>${esc(t.step)}</td><td>${bar(t.progress)} <span class="muted">${t.progress}%</span></td><td>${badge(t.status)}</td><td>${esc(t.message)}</td></tr>`).join('')}
    </tbody></table></div>`;
}

// batchPanels draws each firmware batch (one NICo request over many trays)
// as its trays, each waiting, updating, done or failed.
// byBatch groups tasks by the NICo batch they belong to.
function byBatch(tasks) {
  const batches = new Map();
  for (const t of tasks) {
    const b = t.params && t.params.batch;
    if (!b) continue;
    if (!batches.has(b)) batches.set(b, []);
    batches.get(b).push(t);
  }
  return batches;
}

// batchPhase is where one tray of a batch stands.
function batchPhase(t) {
  if (t.status === 'succeeded') return 'done';
  if (t.status === 'failed' || t.status === 'cancelled') return 'failed';
  return t.status === 'queued' || /^waiting/.test(t.message) ? 'waiting' : 'updating';
}

function batchCounts(list) {
  const count = (p) => list.filter((t) => batchPhase(t) === p).length;
  return `${count('done')} done, ${count('updating')} updating, ${count('waiting')} waiting, ${count('failed')} failed`;
}

// batchSummaries are the racks view's line per batch under way.
function batchSummaries(tasks) {
  return [...byBatch(tasks).entries()].map(([id, list]) => {
    const done = list.filter((t) => batchPhase(t) === 'done' || batchPhase(t) === 'failed').length;
    return `<div class="callout batch-line" data-batch="${esc(id)}"><b>Firmware batch <span class="mono">${esc(id.slice(0, 8))}</span></b>
      ${esc(batchCounts(list))} <span class="muted">(its trays outlined below; <a href="#/tasks">tasks</a>)</span>${bar(100 * done / list.length)}</div>`;
  }).join('');
}

function batchPanels(tasks) {
  const tone = { done: 'ok', failed: 'bad', waiting: 'warn', updating: '' };
  const phase = batchPhase;
  return [...byBatch(tasks).entries()].map(([id, list]) => {
    // In the order the batch runs them: its groups (power shelves, switches,
    // compute), then by tray.
    const trays = list.slice().sort((a, b) => (a.params.group || 0) - (b.params.group || 0) || a.machine_id.localeCompare(b.machine_id));
    return `<section class="panel batch" data-batch="${esc(id)}"><h2>Firmware batch <span class="mono">${esc(id.slice(0, 8))}</span>
      <span class="muted">${esc(batchCounts(trays))}</span></h2>
      <ol class="trays">${trays.map((t) => `<li><a href="#/machines/${encodeURIComponent(t.machine_id)}">${esc(t.machine_id)}</a>
        ${esc(t.params.component || (t.kind === 'dpu-reprovision' ? 'DPUs' : ''))} ${badge(phase(t), `${phase(t)} ${tone[phase(t)]}`)} <span class="muted">${esc(t.message)}</span></li>`).join('')}</ol></section>`;
  }).join('');
}

function tasksView() {
  main.innerHTML = '<h1>Tasks</h1><div id="batches"></div><div id="list">Loading…</div>';
  const load = async () => {
    const t = (await api('GET', '/tasks')).tasks;
    $('#batches').innerHTML = batchPanels(t);
    $('#list').innerHTML = t.length ? taskTable(t) : '<p class="muted">No task yet. Firmware updates (a machine\'s page, or NICo\'s tray API), Drydock deployments and USM deploys show here as they run.</p>';
  };
  load().catch((e) => toast(e.message, true));
  return on('task', throttle(() => load().catch(() => {}), 300));
}

function usersView() {
  main.innerHTML = `<h1>Users</h1>
    <form class="inline panel" id="add"><label>Name <input name="name" required autocomplete="off"></label>
      <label>Role <select name="role"><option>viewer</option><option>operator</option><option>admin</option></select></label>
      <label>Password <input name="password" type="password" minlength="10" required autocomplete="new-password"></label>
      <button class="primary" type="submit">Add user</button></form>
    <div class="table-wrap"><table><thead><tr><th>User</th><th>Role</th><th>From</th><th></th></tr></thead><tbody id="rows"></tbody></table></div>
    <h2>Sessions</h2>
    <div class="table-wrap"><table><thead><tr><th>User</th><th>Logged in from</th><th>Since</th><th class="hide-narrow">Until</th><th></th></tr></thead><tbody id="sessions"></tbody></table></div>`;
  const loadSessions = async () => {
    const list = (await api('GET', '/sessions')).sessions;
    $('#sessions').innerHTML = list.map((s) => `<tr><td>${esc(s.user)}</td><td class="mono">${esc(s.client)}</td><td>${when(s.created_at)}</td>
      <td class="hide-narrow">${when(s.expires_at)}</td>
      <td>${s.current ? '<span class="muted">this session</span>' : `<button class="danger" data-end="${esc(s.id)}" data-user="${esc(s.user)}">End</button>`}</td></tr>`).join('') ||
      '<tr><td colspan="5" class="muted">No session: callers by password alone (HTTP basic) have none.</td></tr>';
    for (const b of document.querySelectorAll('[data-end]')) {
      b.addEventListener('click', async () => {
        if (!confirm(`End ${b.dataset.user}'s session? They will have to log in again.`)) return;
        try { await api('DELETE', '/sessions/' + encodeURIComponent(b.dataset.end)); loadSessions(); } catch (e) { toast(e.message, true); }
      });
    }
  };
  const load = async () => {
    loadSessions().catch((e) => toast(e.message, true));
    const users = (await api('GET', '/users')).users;
    $('#rows').innerHTML = users.map((u) => `<tr><td>${esc(u.name)}</td><td>${badge(u.role, 'ok')}</td><td class="muted">${esc(u.source)}</td>
      <td>${u.source === 'config' ? '<span class="muted">in the config file</span>' : `<button class="danger" data-del="${esc(u.name)}">Delete</button>`}</td></tr>`).join('');
    for (const b of document.querySelectorAll('[data-del]')) {
      b.addEventListener('click', async () => {
        if (!confirm(`Delete user ${b.dataset.del}?`)) return;
        try { await api('DELETE', '/users/' + encodeURIComponent(b.dataset.del)); load(); } catch (e) { toast(e.message, true); }
      });
    }
  };
  $('#add').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try { await api('POST', '/users', { name: f.get('name'), role: f.get('role'), password: f.get('password') }); e.target.reset(); load(); } catch (err) { toast(err.message, true); }
  });
  load().catch((e) => toast(e.message, true));
  return () => {};
}

function leasesView() {
  main.innerHTML = `<h1>DHCP leases</h1><form class="filters" role="search"><label>Filter <input id="lf" placeholder="IP, MAC, hostname, state" autocomplete="off"></label></form>
    <div class="table-wrap"><table><thead><tr><th>IP</th><th>MAC</th><th>Hostname</th><th>State</th><th class="hide-narrow">Expires</th></tr></thead><tbody id="rows"></tbody></table></div>`;
  let all = [];
  const show = () => {
    const f = $('#lf').value.toLowerCase();
    const rows = all.filter((l) => !f || [l.ip, l.mac, l.hostname, l.state].some((v) => (v || '').toLowerCase().includes(f)));
    $('#rows').innerHTML = rows.slice(0, 2000).map((l) => `<tr><td class="mono">${esc(l.ip)}</td><td class="mono">${esc(l.mac)}</td><td>${esc(l.hostname)}</td>
      <td>${badge(l.state, l.state === 'bound' ? 'ok' : 'warn')}</td><td class="hide-narrow">${when(l.expires_at)}</td></tr>`).join('') || '<tr><td colspan="5" class="muted">No lease yet: machines get one when they netboot on the provisioning LAN (check <code>lan.interface</code> and <code>dhcp.range</code> in Settings).</td></tr>';
  };
  const load = async () => { all = (await api('GET', '/leases')).leases; show(); };
  $('#lf').addEventListener('input', show);
  $('form', main).addEventListener('submit', (e) => e.preventDefault());
  load().catch((e) => toast(e.message, true));
  return on('state', throttle(() => load().catch(() => {}), 2000));
}

// policyWords are netboot.unknown_machines's choices in words.
const policyWords = {
  install: 'becomes a discovered machine and installs (the default)',
  local: 'becomes a discovered machine told to boot its own disk, until someone provisions it',
  ignore: 'gets no answer, and nothing is recorded',
};
const doorWords = { dhcp: 'a netbooting DHCP request', boot: 'an iPXE script or GRUB config fetched by MAC', 'cloud-init': 'cloud-init data fetched by MAC', heartbeat: 'an onboarding heartbeat' };

function settingsView() {
  main.innerHTML = `<h1>Settings</h1>
    <section class="panel"><h2>Unknown machines and discovery</h2>
      <p class="muted" id="policy-source"></p>
      <form id="policy">
        <fieldset><legend>A machine nobody listed that netboots (<code>netboot.unknown_machines</code>)</legend>
          ${Object.entries(policyWords).map(([v, w]) => `<label class="check"><input type="radio" name="unknown_machines" value="${v}"> <b>${v}</b>: ${esc(w)}</label>`).join('')}</fieldset>
        <fieldset><legend>What may make a machine of a MAC nobody owns (<code>discovery.doors</code>)</legend>
          ${Object.entries(doorWords).map(([v, w]) => `<label class="check"><input type="checkbox" name="doors" value="${v}"> <b>${v}</b>: ${esc(w)}</label>`).join('')}</fieldset>
        <div class="inline"><label>At most this many discovered machines (<code>discovery.max_machines</code>, 0: no bound)
          <input name="max_machines" type="number" min="0" max="1000000" required></label>
        <label>Forget a discovered machine that never progressed after (<code>discovery.expire_after</code>, 0s: keep them)
          <input name="expire_after" required pattern="[0-9hms.]+" placeholder="72h"></label></div>
        <div class="actions"><button class="primary" type="submit">Apply now</button>
          <button type="button" id="policy-reset">Back to the configuration file's</button></div>
        <p class="error" id="policy-error" role="alert"></p>
      </form></section>
    <section class="panel"><h2>Changed on other pages, at once</h2><ul>
      <li><a href="#/users">Users</a>: add and remove users, and their roles.</li>
      <li><a href="#/bmcs">BMCs</a>: register a BMC with its credentials, or remove one registered here.</li>
      <li><a href="#/designs">Site designs</a>: upload Drydock designs.</li></ul>
      <p class="muted">Everything else below changes in the configuration file, and a restart applies it (<code>slipway check-config</code> first).</p></section>
    <h2>The effective configuration</h2><p class="muted">The file over the built-in defaults; secrets redacted.
      Unknown machines and discovery as set above, when changed here, are in force over the file's.</p><pre class="panel mono" id="yaml">Loading…</pre>`;
  const form = $('#policy');
  const show = ({ policy: p, file: f }) => {
    for (const r of form.querySelectorAll('[name=unknown_machines]')) r.checked = r.value === p.unknown_machines;
    for (const c of form.querySelectorAll('[name=doors]')) c.checked = p.discovery_doors.includes(c.value);
    form.max_machines.value = p.discovery_max_machines;
    form.expire_after.value = p.discovery_expire_after;
    $('#policy-source').innerHTML = p.source === 'changed'
      ? `Changed here by <b>${esc(p.changed_by)}</b> ${when(p.changed_at)}, in force over the configuration file's (${esc(f.unknown_machines)}; ${esc(f.discovery_doors.join(', '))}).`
      : 'As the configuration file says. A change here applies at once, is kept across restarts, and stays over the file until reset.';
    $('#policy-reset').disabled = p.source !== 'changed' || !may('admin');
    for (const el of form.elements) if (el.id !== 'policy-reset') el.disabled = !may('admin');
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const unknown = f.get('unknown_machines');
    if (unknown === 'ignore' && !confirm('Unknown machines will get no answer when they netboot: a new machine racked now will not install. Apply?')) return;
    try {
      show(await api('PUT', '/settings/policy', { unknown_machines: unknown, discovery_doors: f.getAll('doors'),
        discovery_max_machines: Number(f.get('max_machines')), discovery_expire_after: f.get('expire_after') }));
      $('#policy-error').textContent = '';
      toast('Applied: in force now, and kept.');
    } catch (err) { $('#policy-error').textContent = err.message; }
  });
  $('#policy-reset').addEventListener('click', async () => {
    if (!confirm("Go back to the configuration file's unknown machines and discovery?")) return;
    try { show(await api('DELETE', '/settings/policy')); toast("The configuration file's policy is in force again."); } catch (err) { toast(err.message, true); }
  });
  api('GET', '/settings/policy').then(show).catch((e) => toast(e.message, true));
  api('GET', '/settings').then((s) => { $('#yaml').textContent = s.yaml; }).catch((e) => toast(e.message, true));
  return () => {};
}

// ---------- routing ----------

function route() {
  cleanup();
  listeners.clear();
  if (!me) { cleanup = loginView(); return; }
  if (me.must_change_password) { cleanup = changePasswordView(); return; }
  const [path, qs] = location.hash.slice(1).split('?');
  const params = new URLSearchParams(qs || '');
  for (const a of document.querySelectorAll('nav a')) {
    const target = a.getAttribute('href').slice(1);
    a.toggleAttribute('aria-current', target === '/' ? path === '/' || path === '' : (path || '').startsWith(target));
    if (a.hasAttribute('aria-current')) a.setAttribute('aria-current', 'page');
  }
  const m = (path || '/').match(/^\/machines\/(.+)$/);
  if (m) cleanup = machineView(decodeURIComponent(m[1]));
  else if (path === '/overview') cleanup = overviewView();
  else if (path === '/machines') cleanup = machinesView(params);
  else if (path === '/bmcs') cleanup = bmcsView();
  else if (path === '/tasks') cleanup = tasksView();
  else if (path === '/releases') cleanup = releasesView();
  else if (path === '/designs') cleanup = designsView();
  else if (path === '/leases') cleanup = leasesView();
  else if (path === '/settings' && may('admin')) cleanup = settingsView();
  else if (path === '/users' && may('admin')) cleanup = usersView();
  else cleanup = racksView(params);
  main.focus({ preventScroll: true });
}

window.addEventListener('hashchange', () => { closeMenu(); route(); });

// ---------- the menu on a phone: the header is one line, the pages a tap away ----------

function closeMenu() {
  document.body.classList.remove('menu-open');
  $('#menu').setAttribute('aria-expanded', 'false');
}
$('#menu').addEventListener('click', () => {
  const open = document.body.classList.toggle('menu-open');
  $('#menu').setAttribute('aria-expanded', String(open));
});

// ---------- tables on a phone: each row a card, each cell named by its column ----------

// labelCells names every cell by its column's header (data-label), which
// the narrow layout shows beside the value instead of a header row.
function labelCells(root) {
  for (const table of root.querySelectorAll('table')) {
    const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    for (const tr of table.querySelectorAll('tbody tr')) {
      [...tr.children].forEach((td, i) => { if (heads[i] && !td.hasAttribute('colspan')) td.dataset.label = heads[i]; });
    }
  }
}
new MutationObserver(() => labelCellsSoon()).observe(main, { childList: true, subtree: true });
const labelCellsSoon = throttle(() => labelCells(main), 100);

// ---------- theme ----------

const savedTheme = localStorage.getItem('slipway-theme');
if (savedTheme) document.documentElement.dataset.theme = savedTheme;
$('#theme').addEventListener('click', () => {
  const dark = document.documentElement.dataset.theme === 'dark' ||
    (!document.documentElement.dataset.theme && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'light' : 'dark';
  localStorage.setItem('slipway-theme', document.documentElement.dataset.theme);
});

// ---------- the footer: the version, and the certificate to compare with the browser's ----------

api('GET', '/version').then((v) => {
  $('#version').textContent = 'Slipway ' + v.version;
  if (v.tls_fingerprint) $('#cert').textContent = 'TLS certificate SHA-256 ' + v.tls_fingerprint;
}).catch(() => {});

// ---------- start: a live cookie session goes straight in ----------

api('GET', '/me').then((m) => { me = m; startSession(); }).catch(() => route());
