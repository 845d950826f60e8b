// The observer page: one server-sent-events stream (`view` once, then
// `patch`es) merged into one state object and rendered with preact + htm
// (tagged templates: no build step), charts drawn by uPlot. Everything is
// served by the observer itself (see the import map in index.html): nothing
// comes from elsewhere. Elements carry `data-*` attributes that the browser
// test (and anyone scripting the page) can rely on.
import { html, render } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';

const SERIES_POINTS = 120;
const LOG_ENTRIES = 200;
const NAME_ROWS = 500;

/** Folds a patch into the state (a fresh object, so preact sees the change). */
function merge(state, patch) {
  const next = { ...state };
  if (patch.nodes) {
    const nodes = new Map(state.nodes.map((node) => [node.name, node]));
    for (const node of patch.nodes) nodes.set(node.name, node);
    next.nodes = [...nodes.values()];
  }
  if (patch.names) {
    const names = new Map(state.names);
    for (const key of patch.names.delete) names.delete(key);
    for (const row of patch.names.set) names.set(row.key, row);
    next.names = names;
  }
  if (patch.log) next.log = [...state.log, ...patch.log].slice(-LOG_ENTRIES);
  if (patch.point) {
    const series = {};
    for (const [key, values] of Object.entries(state.series)) series[key] = [...values, patch.point[key] ?? null].slice(-SERIES_POINTS);
    next.series = series;
  }
  if (patch.drops) next.drops = patch.drops;
  if (patch.conflicts !== undefined) next.conflicts = patch.conflicts;
  if (patch.dsups) {
    const dsups = new Map(state.dsups);
    for (const id of patch.dsups.delete) dsups.delete(id);
    for (const row of patch.dsups.set) dsups.set(row.id, row);
    next.dsups = dsups;
  }
  return next;
}

function fromView(view) {
  return { ...view, names: new Map(view.names.map((row) => [row.key, row])), dsups: new Map((view.dsups ?? []).map((row) => [row.id, row])) };
}

const bytes = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);
const ms = (n) => (n === undefined || n === null ? '–' : n < 1 ? `${n.toFixed(2)} ms` : `${n.toFixed(1)} ms`);
const time = (at) => new Date(at).toLocaleTimeString();

function Chart({ title, name, series, lines }) {
  const box = useRef(null);
  const plot = useRef(null);
  const data = [series.t, ...lines.map((line) => series[line.key])];
  useEffect(() => {
    const options = {
      width: 340,
      height: 120,
      legend: { show: true, live: false },
      cursor: { show: false },
      axes: [{ size: 24 }, { size: 44 }],
      scales: { x: { time: true } },
      series: [{}, ...lines.map((line) => ({ label: line.label, stroke: line.color, width: 1.5, spanGaps: false }))],
    };
    plot.current = new uPlot(options, data, box.current);
    return () => plot.current.destroy();
  }, []);
  useEffect(() => {
    plot.current?.setData(data);
  });
  return html`<figure class="chart" data-chart=${name}><figcaption>${title}</figcaption><div ref=${box}></div></figure>`;
}

function History({ history }) {
  return html`<ol class="history">
    ${history.map(
      (entry) => html`<li data-history=${entry.status} class=${entry.status}>${time(entry.at)} ${entry.status}${entry.reason ? ` (${entry.reason})` : ''}</li>`,
    )}
  </ol>`;
}

function Tree({ tree }) {
  return html`<details open class="supervisor" data-supervisor=${tree.pid} data-supervisor-name=${tree.name ?? ''} data-restarts=${tree.restarts}>
    <summary>
      <b>${tree.name ?? tree.pid}</b> <span class="muted">${tree.strategy}</span>
      <span class="badge" data-restart-count=${tree.restarts}>${tree.restarts} restart${tree.restarts === 1 ? '' : 's'}</span>
    </summary>
    <ul class="children">
      ${tree.children.map(
        (child) => html`<li data-child=${child.id} data-child-pid=${child.pid ?? ''} data-child-type=${child.type}>
          ${child.tree
            ? html`<${Tree} tree=${child.tree} />`
            : html`<span>${child.id}</span> <span class="muted">${child.type}, ${child.restart}</span> <code>${child.pid ?? 'not running'}</code>`}
        </li>`,
      )}
    </ul>
    ${tree.recentRestarts.length > 0 &&
    html`<details class="restarts"><summary>recent restarts</summary><ol>
      ${tree.recentRestarts.map(
        (restart) => html`<li data-restart-child=${restart.childId}>${time(restart.at)} <b>${restart.childId}</b>: <code>${restart.reason}</code></li>`,
      )}
    </ol></details>`}
  </details>`;
}

function NodeCard({ node }) {
  const f = node.figures;
  return html`<article class=${`node ${node.status}`} data-node=${node.name} data-status=${node.status} data-role=${node.role} data-self=${String(node.self)}>
    <header>
      <h3>${node.name}</h3>
      <span class=${`status ${node.status}`}>${node.status}</span>
      ${node.role === 'observer' && html`<span class="badge">observer</span>`}
      ${node.self && html`<span class="badge">this node</span>`}
      ${node.error && html`<span class="badge warn" data-node-error=${node.error}>${node.error}</span>`}
    </header>
    ${f
      ? html`<dl class="figures">
          <dt>processes</dt><dd data-figure="processes">${f.processCount}</dd>
          <dt>messages/s</dt><dd data-figure="message-rate">${f.messageRate.toFixed(1)}</dd>
          <dt>mailbox max</dt><dd data-figure="mailbox-max">${f.mailboxMax}</dd>
          <dt>memory</dt><dd data-figure="memory">${bytes(f.memory.rss)} rss, ${bytes(f.memory.heapUsed)} heap</dd>
          <dt>loop delay</dt><dd data-figure="loop-delay">p99 ${ms(f.eventLoopDelay.p99)}, max ${ms(f.eventLoopDelay.max)}</dd>
          <dt>calls</dt><dd data-figure="calls">${f.calls} (${f.callsFailed} failed), p99 ${ms(f.callP99)}</dd>
          ${f.frames &&
          html`<dt>frames</dt><dd data-figure="frames" data-frames-dropped=${f.frames.dropped}>${f.frames.sent} out, ${f.frames.received} in, <span class=${f.frames.dropped > 0 ? 'dropped' : ''}>${f.frames.dropped} dropped</span></dd>`}
          ${f.registry &&
          html`<dt>registry</dt><dd data-figure="registry" data-registrations=${f.registry.registrations} data-unregistrations=${f.registry.unregistrations} data-registry-names=${f.registry.names} data-registry-dropped=${f.registry.dropped}>
            ${f.registry.registrations} registered, ${f.registry.unregistrations} unregistered, ${f.registry.names} names${f.registry.conflicts > 0 ? `, ${f.registry.conflicts} conflicts` : ''}${f.registry.dropped > 0 ? `, ${f.registry.dropped} dropped` : ''}
          </dd>
          <dt>registerName</dt><dd data-figure="register-latency">mean ${ms(f.registry.registerMean)}, p99 ${ms(f.registry.registerP99)}</dd>`}
        </dl>`
      : html`<p class="muted">no snapshot yet</p>`}
    <details class="section"><summary>up / down history (${node.history.length})</summary><${History} history=${node.history} /></details>
    ${f &&
    f.longestMailboxes.length > 0 &&
    html`<details class="section"><summary>longest mailboxes</summary><table class="mailboxes">
      ${f.longestMailboxes.map(
        (row) => html`<tr data-mailbox=${row.pid}><td><code>${row.name ?? row.pid}</code></td><td>${row.kind}</td><td class="num">${row.mailboxLength}</td></tr>`,
      )}
    </table></details>`}
    ${f &&
    f.supervisors.length > 0 &&
    html`<section class="trees" data-trees=${node.name}><h4>supervision</h4>${f.supervisors.map((tree) => html`<${Tree} tree=${tree} />`)}</section>`}
  </article>`;
}

/**
 * Cluster-wide supervision, read off the global names: each distributed
 * supervisor (or singleton) with its members (up or down as the node list
 * says) and the children it runs, on the node each runs on.
 */
function DistributedSupervisors({ dsups, nodes }) {
  const status = new Map(nodes.map((node) => [node.name, node.status]));
  const rows = [...dsups.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return html`<section class="dsups" data-dsups-count=${rows.length}>
    <h2>Cluster-wide supervision <span class="muted">${rows.length} distributed supervisor${rows.length === 1 ? '' : 's'}</span></h2>
    ${rows.map(
      (row) => html`<details open class="supervisor" data-dsup=${row.id} data-dsup-singleton=${row.singleton ?? ''}>
        <summary>
          <b>${row.singleton ?? row.id}</b> <span class="muted">${row.singleton ? 'singleton' : 'distributed supervisor'}</span> <span class="badge">${row.members.length} member${row.members.length === 1 ? '' : 's'}, ${row.children.length} child${row.children.length === 1 ? '' : 'ren'}</span>
        </summary>
        <table>
          <thead><tr><th>member node</th><th>status</th><th>pid</th></tr></thead>
          <tbody>
            ${row.members.map((member) => {
              const up = status.get(member.node) ?? 'unknown';
              return html`<tr data-dsup-member=${member.node} data-dsup-member-status=${up}><td>${member.node}</td><td><span class=${`status ${up}`}>${up}</span></td><td><code>${member.pid}</code></td></tr>`;
            })}
          </tbody>
        </table>
        ${row.children.length === 0
          ? html`<p class="muted" data-dsup-children-none>no child under a name of the form [id, childId]</p>`
          : html`<table>
              <thead><tr><th>child</th><th>node</th><th>pid</th></tr></thead>
              <tbody>
                ${row.children.map(
                  (child) => html`<tr data-dsup-child=${child.id} data-dsup-child-node=${child.node} data-dsup-child-pid=${child.pid}>
                    <td><code>${child.id}</code></td><td>${child.node}</td><td><code>${child.pid}</code></td>
                  </tr>`,
                )}
              </tbody>
            </table>`}
      </details>`,
    )}
  </section>`;
}

function Names({ names, conflicts }) {
  const [filter, setFilter] = useState('');
  const rows = [...names.values()]
    .filter((row) => filter === '' || row.name.includes(filter) || row.owner.includes(filter))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return html`<section class="names" data-names-count=${names.size}>
    <h2>Global names <span class="muted">${names.size} held, ${conflicts} conflict${conflicts === 1 ? '' : 's'} settled</span></h2>
    <input type="search" placeholder="filter by name or node" value=${filter} onInput=${(event) => setFilter(event.currentTarget.value)} />
    <table>
      <thead><tr><th>name</th><th>owner node</th><th>pid</th><th>epoch</th><th>since</th></tr></thead>
      <tbody>
        ${rows.slice(0, NAME_ROWS).map(
          (row) => html`<tr data-name=${row.name} data-owner=${row.owner} data-pid=${row.pid} data-conflicts=${row.conflicts} class=${row.conflicts > 0 ? 'conflicted' : ''}>
            <td><code>${row.name}</code></td><td>${row.owner}</td><td><code>${row.pid}</code></td><td><code>${row.epoch ?? ''}</code></td><td>${time(row.since)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${rows.length > NAME_ROWS && html`<p class="muted">showing ${NAME_ROWS} of ${rows.length}: filter to find the others</p>`}
  </section>`;
}

/** Every node's drops by reason; only the reasons that counted something, so the table stays short. */
function Drops({ drops }) {
  const nodes = Object.keys(drops).sort();
  const rows = [];
  for (const node of nodes) {
    for (const [layer, counts] of [['frames', drops[node].frames], ['registry', drops[node].registry]]) {
      for (const [reason, count] of Object.entries(counts)) if (count > 0) rows.push([node, layer, reason, count]);
    }
  }
  return html`<section class="drops" data-drop-nodes=${nodes.length}><h2>Dropped <span class="muted">by node, since it started</span></h2>
    ${rows.length === 0
      ? html`<p class="muted" data-drops-none>nothing dropped on ${nodes.length} node${nodes.length === 1 ? '' : 's'}</p>`
      : html`<table>
          <thead><tr><th>node</th><th>layer</th><th>reason</th><th class="num">count</th></tr></thead>
          <tbody>
            ${rows.map(
              ([node, layer, reason, count]) => html`<tr data-drop-node=${node} data-drop-layer=${layer} data-drop-reason=${reason} data-drop-count=${count} class="nonzero">
                <td>${node}</td><td>${layer}</td><td>${reason.replaceAll('_', ' ')}</td><td class="num">${count}</td>
              </tr>`,
            )}
          </tbody>
        </table>`}
  </section>`;
}

function Log({ log }) {
  return html`<section class="log"><h2>Events</h2><ol>
    ${[...log].reverse().map(
      (entry) => html`<li data-log-kind=${entry.kind} data-log-name=${entry.name ?? ''} data-log-node=${entry.node ?? ''} class=${entry.kind}>
        <span class="muted">${time(entry.at)}</span> <b>${entry.kind}</b> ${entry.text}
      </li>`,
    )}
  </ol></section>`;
}

function App({ state, connection }) {
  if (state === null) return html`<p class="muted">Connecting to the observer…</p>`;
  const up = state.nodes.filter((node) => node.status === 'up').length;
  return html`
    <header class="top">
      <h1>roster <span class="muted">observer</span></h1>
      <span data-cluster=${state.cluster}>cluster <b>${state.cluster}</b></span>
      <span>watching from <b>${state.observer}</b></span>
      ${state.broker && html`<span data-broker>broker <code>${state.broker}</code></span>`}
      <span data-nodes-up=${up}>${up} of ${state.nodes.length} nodes up</span>
      <span class=${`connection ${connection}`} data-connection-state=${connection}>${connection}</span>
    </header>
    <section class="charts">
      <${Chart} name="messages" title="messages delivered / s (cluster)" series=${state.series} lines=${[{ key: 'messages', label: 'msg/s', color: '#2a6fdb' }]} />
      <${Chart} name="calls" title="call round trip, ms" series=${state.series} lines=${[{ key: 'callMean', label: 'mean', color: '#2a9d5c' }, { key: 'callP99', label: 'p99', color: '#d4822a' }]} />
      <${Chart} name="register" title="registerName round trip (all nodes), ms" series=${state.series} lines=${[{ key: 'registerMean', label: 'mean', color: '#7a4fd0' }, { key: 'registerP99', label: 'p99', color: '#c43d6b' }]} />
      <${Chart} name="drops" title="dropped / s (all nodes)" series=${state.series} lines=${[{ key: 'drops', label: 'drops/s', color: '#b23b3b' }]} />
    </section>
    <h2>Nodes</h2>
    <section class="nodes">${state.nodes.map((node) => html`<${NodeCard} key=${node.name} node=${node} />`)}</section>
    ${state.dsups.size > 0 && html`<${DistributedSupervisors} dsups=${state.dsups} nodes=${state.nodes} />`}
    <div class="columns">
      <${Names} names=${state.names} conflicts=${state.conflicts} />
      <div><${Drops} drops=${state.drops} /><${Log} log=${state.log} /></div>
    </div>
  `;
}

const root = document.getElementById('app');
let state = null;
let connection = 'connecting';
let scheduled = false;
function draw() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    root.dataset.connection = connection;
    render(html`<${App} state=${state} connection=${connection} />`, root);
  });
}

const events = new EventSource('/events');
events.addEventListener('view', (event) => {
  state = fromView(JSON.parse(event.data));
  connection = 'live';
  draw();
});
events.addEventListener('patch', (event) => {
  if (state === null) return;
  state = merge(state, JSON.parse(event.data));
  draw();
});
events.addEventListener('error', () => {
  connection = events.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
  draw();
});
root.textContent = '';
draw();
