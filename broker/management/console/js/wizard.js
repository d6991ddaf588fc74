// The "Add integration" and "Edit integration" wizard, in TBMQ's order: type and name, topic
// filters, configuration (a form generated from the type's schema), then check connection and
// save. Editing starts from the saved integration (its type fixed; secrets left empty keep their
// stored value). Copying starts a new integration from a saved one, without its secrets (the API
// shows only their mask). Errors from the API (`POST /api/integration/check`, `POST /api/integration`)
// appear next to their fields; the wizard goes back to the first step that holds one.

import { api } from './api.js';
import { errorBox, fill, h } from './dom.js';
import { MASK, clearFieldErrors, configForm, field, jsonField, showFieldErrors } from './schema_form.js';

const STEPS = ['Type and name', 'Topic filters', 'Configuration', 'Check and save'];

/** The wizard for a new integration copied from the saved one `fromId`. */
export function copyView(section, [fromId] = []) {
  return wizardView(section, [], fromId);
}

/** `value` without the masked secrets: a copy must not save the mask as a secret. */
function withoutMasks(value) {
  if (Array.isArray(value)) return value.map(withoutMasks);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== MASK).map(([k, v]) => [k, withoutMasks(v)]));
}

export async function wizardView(section, [editId] = [], copyFrom = null) {
  const [types, existing, original] = await Promise.all([
    api.get('/api/integration/types'),
    editId ? api.get(`/api/integration/${editId}`) : null,
    copyFrom ? api.get(`/api/integration/${copyFrom}`) : null,
  ]);
  // What the form starts from: the integration edited, or the one copied.
  const template = existing || original;
  const title = existing ? `Edit ${existing.name}` : original ? `Copy ${original.name}` : 'Add integration';
  document.title = `${title} · Tributary`;
  const saved = existing ? existing.configuration || {} : original ? withoutMasks(original.configuration || {}) : {};
  let step = 0;
  let formType = null;
  let config = null;

  const status = h('div', { id: 'wizard-status', 'aria-live': 'polite' });
  const typeNames = [...new Set([...types.map((t) => t.type), template ? template.type : null].filter(Boolean))];
  const typeSelect = h('select', { id: 'wizard-type', required: true, disabled: !!existing },
    h('option', { value: '' }, typeNames.length ? 'Choose a type' : 'No type is served now'),
    typeNames.map((t) => h('option', { value: t, selected: template && t === template.type }, t)));
  const typeHelp = h('p', { class: 'help' });
  const name = h('input', { id: 'wizard-name', type: 'text', required: true, maxlength: 255, autocomplete: 'off',
    value: existing ? existing.name : original ? `${original.name} (copy)` : '' });
  const description = h('input', { id: 'wizard-description', type: 'text', autocomplete: 'off',
    value: template && template.additionalInfo ? template.additionalInfo.description || '' : '' });
  const enabled = h('input', { id: 'wizard-enabled', type: 'checkbox', checked: template ? template.enabled : true });
  typeSelect.addEventListener('change', () => {
    const chosen = types.find((t) => t.type === typeSelect.value);
    typeHelp.textContent = chosen ? `${chosen.description || ''} Driver ${chosen.driverVersions.join(', ')}; served by ${chosen.executors.join(', ')}.` : '';
  });

  const filters = h('div', { class: 'rows', id: 'wizard-filters' });
  const addFilter = (value = '') => {
    const input = h('input', { type: 'text', class: 'topic-filter', value, placeholder: 'sensors/#', 'aria-label': 'Topic filter', spellcheck: 'false' });
    const row = h('div', { class: 'row' }, input,
      h('button', { type: 'button', class: 'secondary small', onclick: () => { row.remove(); }, 'aria-label': 'Remove topic filter' }, 'Remove'));
    filters.append(row);
    return input;
  };
  for (const f of saved.topicFilters && saved.topicFilters.length ? saved.topicFilters : ['']) addFilter(f);

  const configHolder = h('div', { dataset: { field: 'configuration' } }, h('p', { class: 'field-error', hidden: true }));
  const metadata = jsonField('metadata', 'Metadata', saved.metadata || {}, false, 'A JSON object of strings added to every message (TBMQ\'s metadata).');
  const retryPolicy = jsonField('retryPolicy', 'Retry policy', saved.retryPolicy ?? null, false,
    'Optional JSON object overriding the executor-wide retry settings for this integration, e.g. '
    + '{"retries": 5, "initialBackoffMs": 1000, "maxBackoffMs": 30000, "maxMessageAgeMs": 600000}. Empty: the executor\'s defaults.');

  const panels = [
    h('div', {},
      field('type', 'Integration type', typeSelect, { required: true }), typeHelp,
      field('name', 'Name', name, { required: true, description: 'Unique, at most 255 characters.' }),
      field('additionalInfo', 'Description', description, { description: 'Optional.' }),
      field('enabled', 'Enabled', enabled, { inline: true, description: 'Start delivering as soon as it is saved.' }),
      existing ? h('p', { class: 'help' }, 'The type of a saved integration cannot change.') : null),
    h('div', {},
      h('fieldset', { class: 'group', dataset: { field: 'topicFilters' } },
        h('legend', {}, 'Topic filters'),
        h('p', { class: 'help' }, 'MQTT topic filters (+ and # wildcards) whose messages go to this integration.'),
        h('p', { class: 'field-error', hidden: true }),
        filters,
        h('button', { type: 'button', class: 'secondary small', id: 'wizard-add-filter', onclick: () => addFilter().focus() }, 'Add topic filter'))),
    h('div', {}, configHolder, metadata.element, retryPolicy.element),
    h('div', {},
      h('p', {}, 'Check connection asks an executor of this type to reach the target with this configuration; nothing is saved.'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'wizard-check', onclick: () => submit('check') }, 'Check connection'),
        h('button', { type: 'button', id: 'wizard-save', onclick: () => submit('save') }, 'Save integration'))),
  ].map((panel, i) => { panel.dataset.step = String(i); panel.classList.add('step-panel'); return panel; });

  const stepper = h('ol', { class: 'stepper' });
  const back = h('button', { type: 'button', class: 'secondary', id: 'wizard-back', onclick: () => go(step - 1) }, '‹ Back');
  const next = h('button', { type: 'button', id: 'wizard-next', onclick: () => { if (checkStep(step)) go(step + 1); } }, 'Next ›');
  const form = h('form', { class: 'wizard', novalidate: true, onsubmit: (e) => { e.preventDefault(); if (step < 3) next.click(); } },
    panels, h('div', { class: 'actions nav-actions' }, back, next));

  fill(section,
    h('p', {}, existing ? h('a', { href: `#/integrations/${existing.id}` }, `‹ ${existing.name}`) : h('a', { href: '#/integrations' }, '‹ Integrations')),
    h('h1', {}, title),
    stepper, status, form);
  go(0, false);

  function go(target, focus = true) {
    if (target < 0 || target >= STEPS.length) return;
    if (target >= 2) ensureConfigForm();
    step = target;
    panels.forEach((panel, i) => { panel.hidden = i !== step; });
    fill(stepper, STEPS.map((label, i) => h('li', { 'aria-current': i === step ? 'step' : null, class: i < step ? 'done' : null },
      h('button', { type: 'button', class: 'link', onclick: () => { if (i <= step || [...Array(i).keys()].every(checkStep)) go(i); } },
        `${i + 1}. ${label}`))));
    back.hidden = step === 0;
    next.hidden = step === STEPS.length - 1;
    if (focus) panels[step].querySelector('input, select, textarea, button')?.focus();
  }

  function ensureConfigForm() {
    if (formType === typeSelect.value && config) return;
    formType = typeSelect.value;
    const chosen = types.find((t) => t.type === formType);
    // Editing or copying: the saved configuration, while the type is the saved one.
    const value = template && formType === template.type ? saved.clientConfiguration || {} : {};
    config = chosen && chosen.configSchema ? configForm(chosen.configSchema, 'clientConfiguration', value) : configForm(null, 'clientConfiguration', value);
    const note = chosen && chosen.configSchema
      ? original ? h('p', { class: 'note', id: 'wizard-copy-note' }, 'Secrets are not copied: enter them again.') : null
      : h('p', { class: 'note' }, 'This type declares no configuration schema: write its clientConfiguration as JSON.');
    fill(configHolder, h('p', { class: 'field-error', hidden: true }), note,
      h('h2', {}, chosen && chosen.configSchema ? chosen.configSchema.title || `${formType} configuration` : 'Client configuration'),
      config.element);
  }

  // Local checks before leaving a step: the server checks everything again on save.
  function checkStep(index) {
    const errors = [];
    if (index === 0) {
      if (!typeSelect.value) errors.push({ field: 'type', message: 'Choose a type.' });
      if (!name.value.trim()) errors.push({ field: 'name', message: 'Enter a name.' });
    }
    if (index === 1 && !readFilters().length) errors.push({ field: 'topicFilters', message: 'Add at least one topic filter.' });
    showFieldErrors(panels[index], errors);
    if (errors.length) panels[index].querySelector('[aria-invalid], .invalid input, .invalid select')?.focus();
    return errors.length === 0;
  }

  function readFilters() {
    return [...filters.querySelectorAll('input')].map((i) => i.value.trim()).filter(Boolean);
  }

  function request() {
    ensureConfigForm();
    // Keys of the saved configuration the wizard has no field for stay as they were.
    const { retryPolicy: _replaced, ...kept } = saved;
    const configuration = { ...kept, clientConfiguration: config.read(), topicFilters: readFilters(), metadata: metadata.read() || {} };
    const policy = retryPolicy.read();
    if (policy !== undefined) configuration.retryPolicy = policy;
    const body = { name: name.value.trim(), type: typeSelect.value, enabled: enabled.checked, configuration };
    if (existing) body.id = existing.id;
    const info = { ...(template && template.additionalInfo) };
    delete info.description;
    if (description.value.trim()) info.description = description.value.trim();
    if (Object.keys(info).length) body.additionalInfo = info;
    return body;
  }

  async function submit(kind) {
    clearFieldErrors(form);
    fill(status, h('p', { class: 'muted' }, kind === 'check' ? 'Checking the connection…' : 'Saving…'));
    const buttons = [document.getElementById('wizard-check'), document.getElementById('wizard-save')];
    // Disabling the focused button drops the focus to the page: put a keyboard user back after.
    const focused = buttons.find((b) => b === document.activeElement);
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const body = request();
      if (kind === 'check') {
        await api.post('/api/integration/check', body);
        fill(status, h('div', { class: 'success', role: 'status', id: 'wizard-check-ok' }, h('strong', {}, 'Connection OK. '),
          'An executor reached the target with this configuration.'));
      } else {
        const saved = await api.post('/api/integration', body);
        location.hash = `#/integrations/${saved.id}`;
      }
    } catch (error) {
      if (error.status === 401) return;
      const unplaced = showFieldErrors(form, error.fieldErrors || []);
      const title = kind === 'check' ? 'Connection check failed' : 'Not saved';
      fill(status, errorBox({ ...error, message: error.message, fieldErrors: unplaced }, title));
      const invalid = form.querySelector('.field.invalid, .group.invalid, [data-field].invalid');
      if (invalid) {
        const panel = invalid.closest('[data-step]');
        go(Number(panel.dataset.step), false);
        (invalid.querySelector('input, select, textarea') || invalid).focus();
        const count = (error.fieldErrors || []).length - unplaced.length;
        status.querySelector('.error')?.append(h('p', {}, `${count} field${count === 1 ? '' : 's'} marked below.`));
      }
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      if (focused && focused.isConnected && (!document.activeElement || document.activeElement === document.body)) focused.focus();
    }
  }
}
