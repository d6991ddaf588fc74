// One integration: its state and why, delivery figures and a chart of the last 15 minutes,
// configuration, enable/disable, restart, delete (confirmed), its events (lifecycle, statistics
// or errors, paged) and its dead letters (paged, oldest first) with a Replay button. State, chart,
// events and the dead letters' page refresh every few seconds while the page is open, the focus
// staying on the control it was on.

import { api, query } from './api.js';
import { lineChart } from './chart.js';
import { actionButton, badge, confirmDialog, errorBox, fill, h, refill, table, time } from './dom.js';

const HISTORY_MS = 15 * 60 * 1000;
const CHART_SERIES = [
  { key: 'deliveredPerSecond', label: 'Delivered / s', cls: 'delivered' },
  { key: 'failedPerSecond', label: 'Given up / s', cls: 'failed' },
  { key: 'retriedPerSecond', label: 'Retried / s', cls: 'retried' },
  { key: 'backlog', label: 'Backlog', cls: 'backlog' },
];
// The three event types of TBMQ, with how each row reads.
const EVENT_TYPES = {
  LC_EVENT: { label: 'Lifecycle', empty: 'No lifecycle events yet.', columns: ['Time', 'Server', 'Event', 'Status', 'Error'],
    row: (e) => [e.body.server || '', e.body.event || '', e.body.success ? 'Success' : 'Failure', e.body.error || ''] },
  STATS: { label: 'Statistics', empty: 'No statistics events yet.', columns: ['Time', 'Server', 'Messages processed', 'Errors'],
    row: (e) => [e.body.server || '', e.body.messagesProcessed ?? '', e.body.errorsOccurred ?? ''] },
  ERROR: { label: 'Errors', empty: 'No error events yet.', columns: ['Time', 'Server', 'Method', 'Error'],
    row: (e) => [e.body.server || '', e.body.method || '', e.body.error || ''] },
};

const REFRESH_MS = 3000;
const EVENTS_PAGE_SIZE = 10;
const DEAD_LETTER_PAGE_SIZES = [10, 50, 100];

export async function detailsView(section, [id]) {
  let integration = await api.get(`/api/integration/${id}`);
  let eventsPage = 0;
  let eventType = 'LC_EVENT';
  // The dead letters' pages are read by offset: the `fromOffset` of each page up to the one shown
  // (null: the oldest kept), so that Previous goes back exactly.
  const dlq = { size: 50, starts: [null], loads: 0 };
  const header = h('div', { class: 'title-row' });
  const actions = h('div', { class: 'actions', id: 'integration-actions' });
  const notice = h('div', { 'aria-live': 'polite', id: 'integration-notice' });
  const overview = h('dl', { class: 'overview' });
  const events = h('div', { id: 'lifecycle-events', role: 'tabpanel', 'aria-labelledby': 'event-tab-LC_EVENT' });
  const chart = h('div', { id: 'delivery-chart', class: 'charts' });
  // TBMQ's three event types as tabs (WAI-ARIA tabs: the selected tab is the one Tab stops on,
  // the arrow keys, Home and End select another and move the focus to it).
  const eventTabs = Object.entries(EVENT_TYPES).map(([value, t]) => h('button', {
    type: 'button', role: 'tab', id: `event-tab-${value}`, 'aria-controls': 'lifecycle-events',
    'aria-selected': String(value === eventType), tabindex: value === eventType ? '0' : '-1',
    onclick: () => selectEventType(value), onkeydown: (e) => moveEventTab(e, value),
  }, t.label));
  const eventTabList = h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'Event type' }, eventTabs);

  function selectEventType(value) {
    eventType = value;
    eventsPage = 0;
    for (const tab of eventTabs) {
      const selected = tab.id === `event-tab-${value}`;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    events.setAttribute('aria-labelledby', `event-tab-${value}`);
    run('Events', loadEvents);
  }

  function moveEventTab(e, value) {
    const keys = Object.keys(EVENT_TYPES);
    const at = keys.indexOf(value);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: keys.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = keys[(to + keys.length) % keys.length];
    selectEventType(next);
    document.getElementById(`event-tab-${next}`).focus();
  }
  const deadLetters = h('div', { id: 'dead-letters' });
  const configuration = h('div', {});

  fill(section,
    h('p', {}, h('a', { href: '#/integrations' }, '‹ Integrations')),
    header, actions, notice,
    h('section', { 'aria-labelledby': 'h-overview' }, h('h2', { id: 'h-overview' }, 'Overview'), overview),
    h('section', { 'aria-labelledby': 'h-chart' }, h('h2', { id: 'h-chart' }, 'Deliveries, last 15 minutes'), chart),
    h('section', { 'aria-labelledby': 'h-config' }, h('h2', { id: 'h-config' }, 'Configuration'), configuration),
    h('section', { 'aria-labelledby': 'h-events' }, h('h2', { id: 'h-events' }, 'Events'),
      eventTabList, events),
    h('section', { 'aria-labelledby': 'h-dlq' }, h('h2', { id: 'h-dlq' }, 'Dead letters'), deadLetters));

  async function run(what, action) {
    fill(notice);
    try {
      await action();
    } catch (error) {
      if (error.status !== 401) fill(notice, errorBox(error, `${what} failed`));
    }
  }

  function renderIntegration(statusDto) {
    document.title = `${integration.name} · Tributary`;
    const state = statusDto ? statusDto.state : integration.enabled ? 'Pending' : 'Disabled';
    const keepFocus = document.activeElement && actions.contains(document.activeElement) ? document.activeElement.id : null;
    fill(header, h('h1', {}, integration.name), h('span', { id: 'integration-state' }, badge(state)));
    header.classList.add('details-title');
    fill(actions,
      integration.enabled
        ? actionButton('Disable', () => run('Disable', async () => { integration = await api.post(`/api/integration/${id}/disable`); await refresh(); }), { id: 'integration-disable', class: 'secondary' })
        : actionButton('Enable', () => run('Enable', async () => { integration = await api.post(`/api/integration/${id}/enable`); await refresh(); }), { id: 'integration-enable' }),
      h('a', { class: 'button secondary', href: `#/integrations/${id}/edit`, id: 'integration-edit' }, 'Edit'),
      h('a', { class: 'button secondary', href: `#/integrations/${id}/copy`, id: 'integration-copy',
        title: 'A new integration with this one\'s settings (secrets are not copied)' }, 'Copy'),
      actionButton('Restart', () => run('Restart', async () => {
        integration = await api.post(`/api/integration/${id}`);
        fill(notice, h('p', { class: 'success', role: 'status' }, 'Restart requested.'));
        await refresh();
      }), { id: 'integration-restart', class: 'secondary', disabled: !integration.enabled,
        title: integration.enabled ? null : 'Only an enabled integration can be restarted' }),
      actionButton('Delete', () => run('Delete', async () => {
        if (!(await confirmDialog(`Delete the integration "${integration.name}"? Its queued messages and dead letters are deleted too.`, 'Delete'))) return;
        await api.del(`/api/integration/${id}`);
        location.hash = '#/integrations';
      }), { id: 'integration-delete', class: 'danger' }));
    if (keepFocus) document.getElementById(keepFocus)?.focus();
    const raw = integration.status;
    const d = (statusDto && statusDto.delivery) || null;
    fill(overview,
      term('Type', integration.type), term('State', state),
      statusDto && statusDto.reason ? term('Why', h('span', { id: 'integration-reason' }, statusDto.reason)) : null,
      term('Enabled', integration.enabled ? 'Yes' : 'No'),
      d ? [
        term('Executor', `${d.serviceId}${d.executorLive ? '' : ' (not heard from)'}`),
        term('Delivered / s', d.deliveredPerSecond == null ? '—' : d.deliveredPerSecond.toFixed(1)),
        term('Backlog', d.backlog == null ? '—' : h('span', { id: 'integration-backlog' }, String(d.backlog))),
        term('Last delivered', time(d.lastDeliveredTime)),
        term('Last failure', d.lastErrorTime ? `${time(d.lastErrorTime)}: ${d.lastError || ''}` : '—'),
        d.connected == null ? null : term('Target', d.connected ? 'Connected' : `Disconnected: ${d.disconnectReason || ''}`),
        term('Messages', `${d.totalMsgs} handed to the driver, ${d.deliveredMsgs} delivered, ${d.retriedMsgs} retried, ${d.failedMsgs} given up, ${d.deadLetteredMsgs} dead-lettered (since ${d.serviceId} took it)`),
      ] : null,
      term('Created', time(integration.createdTime)),
      integration.enabled ? null : term('Disabled since', time(integration.disconnectedTime)),
      raw && raw.success === false ? term('Last error', `${raw.error || 'unknown'} (executor ${raw.serviceId || '?'})`) : null,
      statusDto && statusDto.lastErrorEvent ? term('Last error event', `${time(statusDto.lastErrorEvent.createdTime)}: ${statusDto.lastErrorEvent.body.method || ''} ${statusDto.lastErrorEvent.body.error || ''}`) : null,
      statusDto && statusDto.lastStatsEvent ? term('Last statistics', `${statusDto.lastStatsEvent.body.messagesProcessed} processed, ${statusDto.lastStatsEvent.body.errorsOccurred} errors (${time(statusDto.lastStatsEvent.createdTime)})`) : null,
      integration.additionalInfo && integration.additionalInfo.description ? term('Description', integration.additionalInfo.description) : null,
      term('Id', h('code', {}, integration.id)));
    const config = integration.configuration || {};
    fill(configuration,
      h('h3', {}, 'Topic filters'),
      h('ul', { class: 'filters' }, (config.topicFilters || []).map((f) => h('li', {}, h('code', {}, f)))),
      h('h3', {}, 'Client configuration'),
      h('pre', { class: 'code', tabindex: '0' }, JSON.stringify(config.clientConfiguration ?? {}, null, 2)),
      config.metadata && Object.keys(config.metadata).length
        ? [h('h3', {}, 'Metadata'), h('pre', { class: 'code', tabindex: '0' }, JSON.stringify(config.metadata, null, 2))] : null);
  }

  async function loadEvents() {
    const type = EVENT_TYPES[eventType];
    const page = await api.get(`/api/events/${id}/${eventType}${query({ pageSize: EVENTS_PAGE_SIZE, page: eventsPage, sortProperty: 'createdTime', sortOrder: 'DESC' })}`);
    const rows = page.data.map((e) => h('tr', {}, h('td', {}, time(e.createdTime)), type.row(e).map((cell) => h('td', {}, cell))));
    const pages = Math.max(page.totalPages, 1);
    refill(events,
      page.data.length ? table(type.columns, rows) : h('p', { class: 'empty' }, type.empty),
      h('nav', { class: 'pager', 'aria-label': 'Event pages' },
        h('button', { type: 'button', class: 'secondary', id: 'events-newer', disabled: eventsPage === 0, onclick: () => { eventsPage -= 1; run('Events', loadEvents); } }, '‹ Newer'),
        h('span', {}, `Page ${Math.min(eventsPage + 1, pages)} of ${pages} · ${page.totalElements} events`),
        h('button', { type: 'button', class: 'secondary', id: 'events-older', disabled: !page.hasNext, onclick: () => { eventsPage += 1; run('Events', loadEvents); } }, 'Older ›')));
  }

  async function loadChart() {
    const points = await api.get(`/api/integration/${id}/deliveryHistory`);
    const now = Date.now();
    fill(chart, points.length
      ? lineChart(points, CHART_SERIES, now - HISTORY_MS, now)
      : h('p', { class: 'empty' }, 'No delivery figures yet: executors report them every 10 s while they run the integration.'));
  }

  async function loadDeadLetters() {
    const index = dlq.starts.length - 1;
    const load = ++dlq.loads;
    const letters = await api.get(`/api/integration/${id}/deadLetters${query({ limit: dlq.size, fromOffset: dlq.starts[index] })}`);
    // A refresh that started before a page was chosen must not show the old page.
    if (load !== dlq.loads) return;
    const pending = letters.total - (letters.replayedUpTo ?? 0);
    const rows = letters.data.map((d) => h('tr', {},
      h('td', {}, d.offset), h('td', {}, time(d.failedAt)), h('td', {}, d.topicName ?? '—'), h('td', {}, d.reason ?? '—'),
      h('td', {}, d.attempts ?? '—'), h('td', {}, d.undecodable ? 'undecodable' : h('code', {}, preview(d.payload)))));
    // Positions counted from the oldest kept: exact while the page size stays (a new size starts over).
    const first = index * dlq.size + 1;
    const last = index * dlq.size + rows.length;
    const lastOffset = rows.length ? letters.data[rows.length - 1].offset : null;
    const hasNext = rows.length === dlq.size && last < letters.total;
    const page = (starts) => { dlq.starts = starts; run('Dead letters', loadDeadLetters); };
    refill(deadLetters,
      h('p', {}, `${letters.total} dead letter${letters.total === 1 ? '' : 's'} kept`,
        letters.replayedUpTo !== null && letters.replayedUpTo !== undefined ? `, replayed up to offset ${letters.replayedUpTo}` : '', '.'),
      rows.length ? table(['Offset', 'Failed at', 'Topic', 'Reason', 'Attempts', 'Payload'], rows) : null,
      letters.total > 0 || index > 0 ? h('nav', { class: 'pager', 'aria-label': 'Dead letter pages' },
        h('button', { type: 'button', class: 'secondary', id: 'dead-letters-prev', disabled: index === 0,
          onclick: () => page(dlq.starts.slice(0, -1)) }, '‹ Previous'),
        h('span', { id: 'dead-letters-range' }, rows.length
          ? `${first}–${last} of ${letters.total}, oldest first`
          : `None on this page, ${letters.total} kept`),
        h('button', { type: 'button', class: 'secondary', id: 'dead-letters-next', disabled: !hasNext,
          onclick: () => page([...dlq.starts, lastOffset + 1]) }, 'Next ›'),
        h('label', { for: 'dead-letters-size' }, 'Per page'),
        h('select', { id: 'dead-letters-size', onchange: (e) => { dlq.size = Number(e.target.value); page([null]); } },
          DEAD_LETTER_PAGE_SIZES.map((n) => h('option', { value: n, selected: n === dlq.size }, n)))) : null,
      actionButton('Replay', () => run('Replay', async () => {
        const answer = await api.post(`/api/integration/${id}/deadLetters/replay`);
        fill(notice, h('p', { class: 'success', role: 'status' }, `Replayed ${answer.replayed} dead letter${answer.replayed === 1 ? '' : 's'}.`));
        await loadDeadLetters();
      }), { id: 'dead-letters-replay', class: 'secondary', disabled: pending <= 0 }));
  }

  async function refresh() {
    const [fresh, status] = await Promise.all([api.get(`/api/integration/${id}`), api.get(`/api/integration/${id}/status`)]);
    integration = fresh;
    renderIntegration(status);
    await Promise.all([loadEvents(), loadChart(), loadDeadLetters()]);
  }

  renderIntegration(null);
  await run('Loading the status', refresh);
  const timer = setInterval(() => {
    if (!section.isConnected) clearInterval(timer);
    else if (!document.hidden && !document.querySelector('dialog[open]')) refresh().catch(() => clearInterval(timer));
  }, REFRESH_MS);
}

function term(label, value) {
  return [h('dt', {}, label), h('dd', {}, value)];
}

/** The first characters of a base64 payload, as text when it is text. */
function preview(base64) {
  if (!base64) return '';
  try {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return text.length > 80 ? `${text.slice(0, 80)}…` : text;
  } catch {
    return `${base64.slice(0, 60)}… (base64)`;
  }
}
