// The redgrain dashboard: plain JavaScript over the dashboard's JSON API, charts by Chart.js.
// Every value from Redis is written with textContent, never as HTML.
'use strict';

const PAGE_SIZE = 20;
const state = { route: 'cluster', grainsOffset: 0, charts: {}, timer: undefined };
// The dashboard's settings (read-only, Jaeger), read once.
let settings;
function config() {
  settings ??= api('api/config');
  return settings;
}

async function api(path, init) {
  const response = await fetch(path, { credentials: 'same-origin', ...init });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text === undefined || text === null ? '' : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(tbody, items, render) {
  tbody.replaceChildren();
  for (const item of items) {
    const row = document.createElement('tr');
    render(row, item);
    tbody.appendChild(row);
  }
}

function showError(error) {
  const box = document.getElementById('error');
  box.hidden = error === undefined;
  box.textContent = error === undefined ? '' : `Error: ${error.message}`;
}

function grainLink(grain) {
  const a = document.createElement('a');
  const slash = grain.indexOf('/');
  a.href = `#/grain/${encodeURIComponent(grain.slice(0, slash))}/${encodeURIComponent(grain.slice(slash + 1))}`;
  a.textContent = grain;
  return a;
}

function chart(id, datasets) {
  if (state.charts[id]) return state.charts[id];
  const canvas = document.getElementById(id);
  state.charts[id] = new Chart(canvas, {
    type: 'line',
    data: { labels: [], datasets: datasets.map((label) => ({ label, data: [], pointRadius: 0, borderWidth: 2, tension: 0.2 })) },
    options: {
      animation: false,
      responsive: true,
      scales: { y: { beginAtZero: true } },
      plugins: { legend: { display: datasets.length > 1 } },
    },
  });
  return state.charts[id];
}

function plot(id, labels, series) {
  const c = chart(id, Object.keys(series));
  c.data.labels = labels;
  Object.values(series).forEach((values, i) => (c.data.datasets[i].data = values));
  c.update();
}

async function renderCluster() {
  const overview = await api('api/overview');
  fill(document.querySelector('#silos tbody'), overview.silos, (row, silo) => {
    row.dataset.silo = silo.id;
    cell(row, silo.id);
    const badge = document.createElement('span');
    badge.className = `status status-${silo.status}`;
    badge.textContent = silo.status;
    cell(row, '').appendChild(badge);
    cell(row, silo.host);
    cell(row, silo.pid);
    cell(row, `${(silo.heartbeatAgeMs / 1000).toFixed(1)} s ago`);
    cell(row, silo.activations);
    const byType = silo.stats
      ? Object.entries(silo.stats.activationsByType)
          .map(([t, n]) => `${t} ${n}`)
          .join(', ')
      : '';
    cell(row, byType);
    cell(row, silo.stats ? silo.stats.processed : '');
    cell(row, silo.stats ? `${silo.stats.turnP50Ms} ms` : '');
    cell(row, silo.stats ? `${silo.stats.turnP99Ms} ms` : '');
  });
  const labels = overview.samples.map((s) => new Date(s.t).toLocaleTimeString());
  plot('chart-rate', labels, { 'messages/s': overview.samples.map((s) => s.rate) });
  plot('chart-latency', labels, { p50: overview.samples.map((s) => s.p50), p99: overview.samples.map((s) => s.p99) });
  plot('chart-depth', labels, { waiting: overview.samples.map((s) => s.depth) });
  plot('chart-dead', labels, { 'dead letters': overview.samples.map((s) => s.deadLetters) });
}

async function renderGrains() {
  const page = await api(`api/grains?limit=${PAGE_SIZE}&offset=${state.grainsOffset}`);
  fill(document.querySelector('#grains tbody'), page.grains, (row, grain) => {
    const td = cell(row, '');
    td.appendChild(grainLink(grain.grain));
    cell(row, grain.waiting);
    cell(
      row,
      grain.owner ? `${grain.owner}${grain.ownerStatus && grain.ownerStatus !== 'active' ? ` (${grain.ownerStatus})` : ''}` : 'none',
    );
  });
  document.getElementById('grains-page').textContent = `${state.grainsOffset + 1}-${state.grainsOffset + page.grains.length}`;
  document.getElementById('grains-prev').disabled = state.grainsOffset === 0;
  document.getElementById('grains-next').disabled = page.grains.length < PAGE_SIZE;
}

async function renderGrain(type, key) {
  const grain = await api(`api/grain?type=${encodeURIComponent(type)}&key=${encodeURIComponent(key)}`);
  document.getElementById('grain-title').textContent = grain.grain;
  const facts = document.getElementById('grain-facts');
  facts.replaceChildren();
  const fact = (name, value) => {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    if (value instanceof Node) dd.appendChild(value);
    else dd.textContent = value;
    facts.append(dt, dd);
  };
  fact('owner', grain.owner ? `${grain.owner.silo} (${grain.owner.siloStatus || 'no record'}), epoch ${grain.owner.epoch}` : 'not active');
  fact(
    'mailbox',
    `${grain.mailbox.waiting} waiting, ${grain.mailbox.active} in progress, ${grain.mailbox.failed} failed, ${grain.mailbox.delayed} delayed`,
  );
  const { jaegerUrl, jaegerService } = await config();
  if (jaegerUrl) {
    const a = document.createElement('a');
    a.id = 'grain-traces';
    const tags = encodeURIComponent(JSON.stringify({ 'redgrain.grain.type': grain.type, 'redgrain.grain.key': grain.key }));
    a.href = `${jaegerUrl.replace(/\/$/, '')}/search?service=${encodeURIComponent(jaegerService)}&tags=${tags}`;
    a.textContent = 'traces in Jaeger';
    a.target = '_blank';
    fact('traces', a);
  }
  renderMachine(grain);
  document.getElementById('grain-state').textContent = JSON.stringify(grain.state, null, 2);
  fill(document.querySelector('#grain-waiting tbody'), grain.waiting, (row, m) => {
    cell(row, m.id);
    cell(row, m.method);
    cell(row, m.sentAt);
    cell(row, m.correlationId);
  });
  fill(document.querySelector('#grain-failed tbody'), grain.failed, (row, m) => {
    cell(row, m.id);
    cell(row, m.method);
    cell(row, m.reason);
  });
  fill(document.querySelector('#grain-reminders tbody'), grain.reminders, (row, r) => {
    cell(row, r.name);
    cell(row, r.method);
    cell(row, JSON.stringify(r.schedule));
  });
  fill(document.querySelector('#grain-subscriptions tbody'), grain.subscriptions, (row, sub) => {
    cell(row, sub.pattern);
    cell(row, sub.method);
  });
  document.getElementById('grain-events-section').hidden = grain.events.length === 0;
  fill(document.querySelector('#grain-events tbody'), grain.events, (row, e) => {
    cell(row, e.seq);
    cell(row, e.event && typeof e.event === 'object' ? e.event.type : '');
    cell(row, JSON.stringify(e.event));
    cell(row, e.version);
    cell(row, new Date(e.at).toLocaleString());
    cell(row, e.correlationId);
  });
}

// A state-machine grain: every state of its machine (as its silos registered it) with the
// messages that leave it, the current one marked; then the transition history.
function renderMachine(grain) {
  const box = document.getElementById('grain-machine');
  box.replaceChildren();
  const current = grain.state.status;
  if (typeof current !== 'string' || !Array.isArray(grain.state.history)) return;
  const heading = document.createElement('h3');
  heading.textContent = 'State machine';
  const diagram = document.createElement('div');
  diagram.className = 'machine';
  const machine = grain.machine;
  const names = machine ? Object.keys(machine.states) : [...new Set(grain.state.history.flatMap((t) => [t.from, t.to]).concat([current]))];
  for (const name of names) {
    const node = document.createElement('div');
    node.className = `machine-state${name === current ? ' current' : ''}${machine && (machine.terminal || []).includes(name) ? ' terminal' : ''}`;
    node.dataset.state = name;
    const title = document.createElement('strong');
    title.textContent = name + (machine && machine.initial === name ? ' (initial)' : '');
    node.appendChild(title);
    const exits = machine ? Object.entries(machine.states[name] || {}) : [];
    const list = document.createElement('ul');
    for (const [message, target] of exits) {
      const item = document.createElement('li');
      item.textContent = `${message} → ${Array.isArray(target) ? target.join(' | ') : target}`;
      list.appendChild(item);
    }
    if (exits.length > 0) node.appendChild(list);
    diagram.appendChild(node);
  }
  const table = document.createElement('table');
  table.id = 'grain-history';
  const head = document.createElement('tr');
  for (const h of ['at', 'from', 'to', 'message', 'actor', 'correlation id']) cell(head, h);
  table.appendChild(head);
  for (const t of grain.state.history) {
    const row = document.createElement('tr');
    for (const v of [t.at, t.from, t.to, t.message, t.actor, t.correlationId]) cell(row, v);
    table.appendChild(row);
  }
  const historyHeading = document.createElement('h3');
  historyHeading.textContent = 'Transitions';
  box.append(heading, diagram, historyHeading, table);
}

async function renderDeadLetters() {
  const { deadLetters, readOnly } = await api('api/deadletters?limit=100');
  document.querySelector('#deadletters th.actions').hidden = readOnly;
  fill(document.querySelector('#deadletters tbody'), deadLetters, (row, letter) => {
    row.dataset.id = letter.id;
    cell(row, new Date(letter.at).toLocaleString());
    const td = cell(row, '');
    td.appendChild(grainLink(`${letter.grainType}/${letter.grainKey}`));
    cell(row, letter.method);
    cell(row, letter.attempts);
    cell(row, letter.reason);
    cell(row, messageText(letter.message), 'message');
    if (readOnly) return;
    const actions = cell(row, '');
    for (const action of ['redrive', 'discard']) {
      const button = document.createElement('button');
      button.textContent = action;
      button.dataset.action = action;
      button.addEventListener('click', () => {
        if (!confirm(`${action} the dead letter ${letter.id} (${letter.grainType}/${letter.grainKey}.${letter.method})?`)) return;
        button.disabled = true;
        api(`api/deadletters/${encodeURIComponent(letter.id)}/${action}`, { method: 'POST', headers: { 'X-Redgrain-Dashboard': '1' } })
          .then(() => renderDeadLetters())
          .then(() => showError(undefined))
          .catch(showError);
      });
      actions.appendChild(button);
    }
  });
}

// A dead letter's stored envelope, shortened: its arguments as JSON.
function messageText(message) {
  let args = message && typeof message === 'object' && 'a' in message ? message.a : message;
  if (typeof args === 'string') {
    try {
      const parsed = JSON.parse(args);
      args = parsed && typeof parsed === 'object' && 'json' in parsed ? parsed.json : parsed;
    } catch {
      // not JSON: shown as it is
    }
  }
  const text = typeof args === 'string' ? args : JSON.stringify(args);
  return text && text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

// Opened as /?token=...: the cookie the server set carries it from now on, so it leaves the address bar.
if (new URLSearchParams(location.search).has('token')) history.replaceState(null, '', location.pathname + location.hash);

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 'grain' && parts.length >= 3)
    return { page: 'grain', type: decodeURIComponent(parts[1]), key: decodeURIComponent(parts.slice(2).join('/')) };
  if (parts[0] === 'grains' || parts[0] === 'deadletters') return { page: parts[0] };
  return { page: 'cluster' };
}

async function refresh() {
  const route = parseRoute();
  for (const section of document.querySelectorAll('main > section')) section.hidden = section.id !== `page-${route.page}`;
  for (const link of document.querySelectorAll('nav a')) link.classList.toggle('current', link.dataset.nav === route.page);
  try {
    if (route.page === 'cluster') await renderCluster();
    if (route.page === 'grains') await renderGrains();
    if (route.page === 'grain') await renderGrain(route.type, route.key);
    if (route.page === 'deadletters') await renderDeadLetters();
    showError(undefined);
    document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    showError(error);
  }
}

function schedule() {
  clearTimeout(state.timer);
  // Live pages poll; the dead letters and a grain's page refresh less often, and not while a dialog waits.
  state.timer = setTimeout(() => {
    void refresh().then(schedule);
  }, 2_000);
}

document.getElementById('grain-search').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  location.hash = `#/grain/${encodeURIComponent(form.get('type'))}/${encodeURIComponent(form.get('key'))}`;
});
document.getElementById('grains-prev').addEventListener('click', () => {
  state.grainsOffset = Math.max(0, state.grainsOffset - PAGE_SIZE);
  void refresh();
});
document.getElementById('grains-next').addEventListener('click', () => {
  state.grainsOffset += PAGE_SIZE;
  void refresh();
});
window.addEventListener('hashchange', () => {
  void refresh();
  schedule();
});
void refresh();
schedule();
