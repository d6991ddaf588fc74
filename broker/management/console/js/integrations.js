// The integrations list: name, type, status (with its reason), enabled, messages per second,
// backlog, last delivery and last error, created time; search by name, sort and page through
// the API (`GET /api/integrations`, filtered by `type`, then `GET /api/integrations/status` for
// the page's ids).

import { api, query } from './api.js';
import { badge, errorBox, fill, h, stateOf, time, uid } from './dom.js';

const REFRESH_MS = 5000;

// Kept across visits, so that coming back from an integration shows the same page.
const state = { page: 0, pageSize: 20, textSearch: '', type: '', sortProperty: 'createdTime', sortOrder: 'DESC' };

export async function integrationsView(section) {
  document.title = 'Integrations · Tributary';
  const types = await api.get('/api/integration/types').catch(() => []);
  const body = h('div', { 'aria-live': 'polite' });
  const searchId = uid('search');
  const typeId = uid('type');
  const search = h('input', { id: searchId, type: 'search', value: state.textSearch, placeholder: 'Part of a name' });
  const typeSelect = h('select', { id: typeId },
    h('option', { value: '' }, 'All types'),
    [...new Set([...types.map((t) => t.type), state.type].filter(Boolean))].map((t) =>
      h('option', { value: t, selected: t === state.type }, t)));
  let debounce;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { state.textSearch = search.value.trim(); state.page = 0; load(); }, 300);
  });
  typeSelect.addEventListener('change', () => { state.type = typeSelect.value; state.page = 0; load(); });

  fill(section,
    h('div', { class: 'title-row' },
      h('h1', {}, 'Integrations'),
      h('a', { class: 'button', href: '#/integrations/new', id: 'add-integration' }, 'Add integration')),
    h('div', { class: 'toolbar', role: 'search' },
      h('label', { for: searchId }, 'Search by name'), search,
      h('label', { for: typeId }, 'Type'), typeSelect,
      h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh')),
    body);

  let loading = false;
  async function load() {
    if (loading) return;
    loading = true;
    try {
      const page = await fetchPage();
      const ids = page.data.map((i) => i.id);
      const states = ids.length
        ? await api.get(`/api/integrations/status${query({ integrationIds: ids.join(',') })}`).catch(() => [])
        : [];
      page.states = new Map(states.map((s) => [s.integrationId, s]));
      render(page);
    } catch (error) {
      if (error.status !== 401) fill(body, errorBox(error, 'Cannot list integrations'));
    } finally {
      loading = false;
    }
  }

  function render(page) {
    const focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement.id : null;
    const rows = page.data.map((i) => {
      const s = page.states.get(i.id);
      const d = (s && s.delivery) || {};
      return h('tr', {},
        // An id, so that the focus stays on the link when the list refreshes.
        h('td', {}, h('a', { href: `#/integrations/${i.id}`, id: `open-${i.id}` }, i.name)),
        h('td', {}, i.type),
        h('td', { title: (s && s.reason) || '' }, badge(s ? s.state : stateOf(i)),
          s && s.reason && s.state !== 'Disabled' ? h('div', { class: 'muted small' }, s.reason) : null),
        h('td', {}, i.enabled ? 'Yes' : 'No'),
        h('td', { class: 'num' }, d.deliveredPerSecond == null ? '—' : d.deliveredPerSecond.toFixed(1)),
        h('td', { class: 'num' }, d.backlog == null ? '—' : String(d.backlog)),
        h('td', {}, time(d.lastDeliveredTime)),
        h('td', { title: d.lastError || '' }, time(d.lastErrorTime)),
        h('td', {}, time(i.createdTime)));
    });
    const column = (label) => h('th', { scope: 'col' }, label);
    const headers = [sortHeader('Name', 'name'), sortHeader('Type', 'type'), column('Status'),
      sortHeader('Enabled', 'enabled'), column('Msg/s'), column('Backlog'), column('Last delivered'),
      column('Last error'), sortHeader('Created', 'createdTime')];
    const pages = Math.max(page.totalPages, 1);
    const sizeId = uid('size');
    fill(body,
      page.data.length
        ? h('div', { class: 'table-wrap' }, h('table', { id: 'integrations' },
          h('thead', {}, h('tr', {}, headers)), h('tbody', {}, rows)))
        : h('p', { class: 'empty' }, state.textSearch || state.type
          ? 'No integration matches.' : 'No integrations yet. Add one to forward messages to another system.'),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('button', { type: 'button', id: 'page-prev', class: 'secondary', disabled: state.page === 0,
          onclick: () => { state.page -= 1; load(); } }, '‹ Previous'),
        h('span', {}, `Page ${Math.min(state.page + 1, pages)} of ${pages} · ${page.totalElements} integration${page.totalElements === 1 ? '' : 's'}`),
        h('button', { type: 'button', id: 'page-next', class: 'secondary', disabled: !page.hasNext,
          onclick: () => { state.page += 1; load(); } }, 'Next ›'),
        h('label', { for: sizeId }, 'Per page'),
        h('select', { id: sizeId, onchange: (e) => { state.pageSize = Number(e.target.value); state.page = 0; load(); } },
          [10, 20, 50, 100].map((n) => h('option', { value: n, selected: n === state.pageSize }, n)))));
    if (focused) document.getElementById(focused)?.focus();
  }

  function sortHeader(label, property) {
    const active = state.sortProperty === property;
    const sort = active ? (state.sortOrder === 'ASC' ? 'ascending' : 'descending') : 'none';
    return h('th', { scope: 'col', 'aria-sort': sort },
      h('button', { type: 'button', class: 'sort', id: `sort-${property}`, onclick: () => {
        state.sortOrder = active && state.sortOrder === 'ASC' ? 'DESC' : 'ASC';
        state.sortProperty = property;
        state.page = 0;
        load();
      } }, label, active ? (state.sortOrder === 'ASC' ? ' ▲' : ' ▼') : ''));
  }

  await load();
  const timer = setInterval(() => {
    if (!section.isConnected) clearInterval(timer);
    else if (!document.hidden) load();
  }, REFRESH_MS);
}

async function fetchPage() {
  const params = { textSearch: state.textSearch, sortProperty: state.sortProperty, sortOrder: state.sortOrder, type: state.type };
  return api.get(`/api/integrations${query({ pageSize: state.pageSize, page: state.page, ...params })}`);
}
