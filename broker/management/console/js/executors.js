// Executors: who serves which types, their driver libraries, refused plugins and when they were
// last heard from (`GET /api/executors`), and the types with a configuration schema.

import { api } from './api.js';
import { badge, fill, h, table, time } from './dom.js';

export async function executorsView(section) {
  document.title = 'Executors · Tributary';
  const [executors, types] = await Promise.all([api.get('/api/executors'), api.get('/api/integration/types')]);
  const rows = executors.map((e) => h('tr', {},
    h('td', {}, h('code', {}, e.serviceId)),
    h('td', {}, badge(e.live ? 'Live' : 'Gone')),
    h('td', {}, time(e.lastSeen)),
    h('td', {}, e.integrationTypes.join(', ') || '—'),
    h('td', {}, e.drivers.length ? h('ul', { class: 'plain' }, e.drivers.map((d) =>
      h('li', {}, h('strong', {}, d.integrationType), ` ${d.driverVersion} `, h('code', { class: 'file' }, d.file),
        d.hasConfigSchema ? '' : ' (no schema)'))) : '—'),
    h('td', {}, e.pluginErrors.length ? h('ul', { class: 'plain error-text' }, e.pluginErrors.map((p) => h('li', {}, p))) : 'None')));
  const typeRows = types.map((t) => h('tr', {},
    h('td', {}, h('strong', {}, t.type)), h('td', {}, t.description || ''), h('td', {}, t.driverVersions.join(', ')),
    h('td', {}, t.executors.join(', ')), h('td', {}, t.configSchema ? 'Form' : 'JSON only')));
  fill(section,
    h('div', { class: 'title-row' }, h('h1', {}, 'Executors'),
      h('button', { type: 'button', class: 'secondary', onclick: () => executorsView(section) }, 'Refresh')),
    executors.length
      ? table(['Service id', 'State', 'Last seen', 'Types', 'Drivers', 'Plugin errors'], rows)
      : h('p', { class: 'empty' }, 'No executor has announced itself yet.'),
    h('h2', {}, 'Integration types served now'),
    types.length
      ? table(['Type', 'Description', 'Driver versions', 'Executors', 'Configuration'], typeRows)
      : h('p', { class: 'empty' }, 'No live executor serves a type.'));
}
