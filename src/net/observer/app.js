// The observer page: draws each sample the node sends (Server-Sent Events from /observer/events),
// keeps five minutes of history for the sparklines, lists a kind's actors, and runs kill and reload
// with the session's CSRF token. Plain DOM, no libraries: the page loads nothing from elsewhere.
'use strict';

const csrf = document.querySelector('meta[name=csrf]').content;
const HISTORY = 150; // samples: five minutes at one every two seconds
const history = new Map(); // scheduler → [{ at, rate, lag }]
let previous = null;
let picked = null;
let last = null;

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (text or elements): no HTML strings, nothing to escape. */
function el(name, attrs, ...children) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

const bytes = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`);
const count = (n) => n.toLocaleString('en');
const rate = (n) => (n >= 100 ? count(Math.round(n)) : n.toFixed(1));
function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

function toast(text, error) {
  const t = $('toast');
  t.textContent = text;
  t.className = error ? 'error' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

async function act(what, body, confirmText) {
  if (confirmText && !confirm(confirmText)) return;
  const r = await fetch(`/observer/${what}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify(body), credentials: 'same-origin' });
  const out = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) { toast(`${what} failed: ${out.error}`, true); return; }
  toast(what === 'kill' ? `killed ${body.address}: its supervisor restarts it` : `reloaded ${body.kind}`);
  if (picked) loadActors();
}

/** A sparkline of one series, scaled to its own maximum. */
function spark(values, cls) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${HISTORY} 40`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1e-9, ...values);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('class', cls);
  line.setAttribute('points', values.map((v, i) => `${HISTORY - values.length + i},${38 - (v / max) * 36}`).join(' '));
  svg.append(line);
  return svg;
}

function summary(s) {
  const dt = previous ? (s.at - previous.at) / 1000 : 0;
  const inRate = dt ? (s.stanzas.in - previous.stanzas.in) / dt : 0;
  const outRate = dt ? (s.stanzas.out - previous.stanzas.out) / dt : 0;
  const items = [
    ['up', duration(s.uptimeSeconds)], ['main thread RSS', bytes(s.main.rss)], ['main heap', bytes(s.main.heapUsed)],
    ['connections', `${count(s.connections.open)} (${count(s.connections.unauthenticated)} not logged in)`],
    ['stanzas in / out', `${rate(inRate)} / ${rate(outRate)} per s`], ['actor crashes', count(s.restarts.actorCrashes)],
    ['stats round trip', `${s.statsMs} ms`],
  ];
  $('summary').replaceChildren(...items.map(([k, v]) => el('div', null, el('dt', null, k), el('dd', null, v))));
}

function schedulers(s) {
  const dt = previous ? (s.at - previous.at) / 1000 : 0;
  $('schedulers').replaceChildren(...s.schedulers.map((t) => {
    const before = previous?.schedulers.find((p) => p.thread === t.thread);
    const perSecond = dt && before ? Math.max(0, (t.handled - before.handled) / dt) : 0;
    const h = history.get(t.thread) ?? [];
    h.push({ rate: perSecond, lag: t.lagP99 });
    if (h.length > HISTORY) h.shift();
    history.set(t.thread, h);
    const fig = (k, v) => el('div', null, el('span', null, k), el('span', null, v));
    return el('div', { class: 'card', 'data-thread': t.thread },
      el('h3', null, `scheduler ${t.thread}`),
      el('div', { class: 'figures' },
        fig('actors', count(t.actors)), fig('mailboxes', count(t.mailboxDepth)), fig('durable backlog', count(t.durableQueued)),
        fig('messages/s', rate(perSecond)), fig('heap', bytes(t.heapUsed)), fig('event-loop lag p99', `${t.lagP99} ms`)),
      spark(h.map((p) => p.rate), 'rate'),
      spark(h.map((p) => p.lag), 'lag'),
      el('div', { class: 'legend' }, el('span', null, 'messages/s (blue), event-loop lag p99 (yellow)'), el('span', null, `last ${Math.round((h.length * 2) / 60 * 10) / 10} min`)));
  }));
}

function treeNode(n) {
  if (!('strategy' in n)) {
    return el('li', null, el('span', { class: `dot${n.running ? '' : ' down'}` }), n.name, n.running ? null : el('span', { class: 'badge down' }, 'down'));
  }
  const badges = [
    el('span', { class: 'badge' }, n.strategy), el('span', { class: 'badge' }, n.intensity),
    n.restarts ? el('span', { class: 'badge restarts' }, `${n.restarts} restart${n.restarts === 1 ? '' : 's'}`) : null,
    n.dynamic ? el('span', { class: 'badge' }, `${count(n.dynamic.children)} children · ${count(n.dynamic.started)} started`) : null,
  ];
  return el('li', null, el('span', { class: 'node-name' }, n.name), badges, n.children.length ? el('ul', null, n.children.map(treeNode)) : null);
}

function kinds(s) {
  const threads = s.schedulers.map((t) => t.thread);
  const rows = Object.entries(s.kinds).sort((a, b) => b[1].actors - a[1].actors || a[0].localeCompare(b[0]));
  $('kinds').tBodies[0].replaceChildren(...rows.map(([kind, k]) => el('tr', { class: picked === kind ? 'picked' : null },
    el('td', null, el('a', { class: 'kind', onclick: () => pick(kind) }, kind)),
    el('td', { class: 'num' }, count(k.actors)),
    el('td', null, threads.map((t) => `${t}: ${k.byScheduler[t] ?? 0}`).join('  ')),
    el('td', { class: 'num' }, `v${k.version}${k.loads > 1 ? ` (${k.loads} loads)` : ''}`),
    el('td', { class: 'num' }, el('button', { onclick: () => act('reload', { kind }, `Reload the code of ${kind} on every scheduler? Its actors keep their state.`) }, 'reload')))));
}

function crashes(s) {
  $('crashes').tBodies[0].replaceChildren(...(s.crashes.length ? s.crashes.slice().reverse().map((c) => el('tr', null,
    el('td', null, new Date(c.at).toLocaleTimeString()), el('td', { class: 'addr' }, c.address), el('td', { class: 'reason' }, c.reason)))
    : [el('tr', null, el('td', { colspan: 3, class: 'muted' }, 'No crash since the node started.'))]));
}

function pick(kind) {
  picked = kind;
  $('actors-panel').hidden = false;
  $('actors-kind').textContent = kind;
  if (last) kinds(last);
  loadActors();
}

async function loadActors() {
  if (!picked) return;
  const q = new URLSearchParams({ kind: picked, q: $('actors-filter').value });
  const r = await fetch(`/observer/actors?${q}`, { credentials: 'same-origin' });
  if (!r.ok) return;
  const { total, actors } = await r.json();
  $('actors-count').textContent = total > actors.length ? `${count(total)} actors, the ${actors.length} with the longest mailboxes` : `${count(total)} actors`;
  $('actors').tBodies[0].replaceChildren(...actors.map((a) => el('tr', null,
    el('td', { class: 'addr' }, a.address), el('td', { class: 'num' }, a.scheduler), el('td', { class: 'num' }, count(a.queue)),
    el('td', { class: 'num' }, count(a.durable)), el('td', { class: 'num' }, count(a.handled)), el('td', null, a.status),
    el('td', { class: 'num' }, el('button', { class: 'danger', 'data-kill': a.address, onclick: () => act('kill', { address: a.address }, `Kill ${a.address}? Its supervisor restarts it from its last snapshot.`) }, 'kill')))));
}

function draw(s) {
  summary(s);
  schedulers(s);
  $('tree').replaceChildren(...(s.tree ? [treeNode(s.tree)] : []));
  kinds(s);
  crashes(s);
  previous = s;
  last = s;
}

$('actors-filter').addEventListener('input', () => loadActors());
setInterval(() => { if (picked && !document.hidden) loadActors(); }, 2000);

const events = new EventSource('/observer/events');
events.onmessage = (e) => { draw(JSON.parse(e.data)); document.body.dataset.samples = String(Number(document.body.dataset.samples ?? 0) + 1); };
events.onerror = () => toast('lost the node: reconnecting…', true);
