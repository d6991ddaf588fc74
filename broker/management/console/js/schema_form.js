// A form generated from a driver's JSON Schema of `clientConfiguration` (the subset plugin-api
// documents: object properties with title/description/default/enum/minimum/maximum/required,
// maps as `additionalProperties`, `oneOf` variants told apart by a `type` const, secrets marked
// `writeOnly` + `x-secret`). A type without a schema gets a JSON text area. Every field sits in
// an element with `data-field` = its path, where `showFieldErrors` puts the API's messages.

import { fill, h, uid } from './dom.js';

/** Builds the form of `schema` (null: a JSON text area). `read()` returns the configuration. */
export function configForm(schema, prefix = 'clientConfiguration', value = {}) {
  if (!schema || schema.type !== 'object' || !schema.properties) return jsonField(prefix, 'Client configuration (JSON)', value, true);
  return objectFields(schema, prefix, value || {});
}

/** How the API shows a secret it keeps (sending it back keeps the stored value). */
export const MASK = '******';

/** A labelled field wrapper with its help text and error slot. */
export function field(path, label, control, { description, required, inline } = {}) {
  const id = control.id || uid('in');
  control.id = id;
  const helpId = description ? `${id}-help` : null;
  const errorId = `${id}-error`;
  control.setAttribute('aria-describedby', [helpId, errorId].filter(Boolean).join(' '));
  if (required) control.setAttribute('aria-required', 'true');
  const labelElement = h('label', { for: id }, label, required ? h('span', { class: 'required', title: 'required' }, ' *') : null);
  return h('div', { class: inline ? 'field field-inline' : 'field', dataset: { field: path } },
    inline ? [control, labelElement] : [labelElement, control],
    description ? h('p', { class: 'help', id: helpId }, description) : null,
    h('p', { class: 'field-error', id: errorId, hidden: true }));
}

/**
 * Puts each `{field, message}` next to its field inside `root`; returns the errors that have
 * no field there. Field names are looked up as given, then under `clientConfiguration.`.
 */
export function showFieldErrors(root, errors) {
  clearFieldErrors(root);
  const unplaced = [];
  for (const error of errors) {
    const name = String(error.field || '').replace(/^configuration\./, '');
    const candidates = [name, `clientConfiguration.${name}`, name.replace(/\[(\d+)\]/g, '.$1')];
    const target = candidates.map((c) => root.querySelector(`[data-field="${CSS.escape(c)}"]`)).find(Boolean);
    if (!target || !name) {
      unplaced.push(error);
      continue;
    }
    const slot = target.querySelector(':scope > .field-error');
    const previous = slot.hidden ? '' : `${slot.textContent}; `;
    slot.textContent = previous + error.message;
    slot.hidden = false;
    target.classList.add('invalid');
    target.querySelectorAll(':scope > input, :scope > select, :scope > textarea').forEach((c) => c.setAttribute('aria-invalid', 'true'));
  }
  return unplaced;
}

export function clearFieldErrors(root) {
  root.querySelectorAll('.field.invalid').forEach((f) => f.classList.remove('invalid'));
  root.querySelectorAll('.field-error').forEach((slot) => { slot.hidden = true; slot.textContent = ''; });
  root.querySelectorAll('[aria-invalid]').forEach((c) => c.removeAttribute('aria-invalid'));
}

function objectFields(schema, path, value) {
  const required = new Set(schema.required || []);
  const parts = Object.entries(schema.properties || {}).map(([key, property]) =>
    property.const !== undefined ? null : propertyField(property, `${path}.${key}`, key, value ? value[key] : undefined, required.has(key)));
  const kept = parts.filter(Boolean);
  return {
    element: h('div', { class: 'fields' }, kept.map((p) => p.element)),
    read() {
      const out = {};
      for (const [key, property] of Object.entries(schema.properties || {})) {
        if (property.const !== undefined) out[key] = property.const;
      }
      for (const p of kept) {
        const v = p.read();
        if (v !== undefined) out[p.key] = v;
      }
      return out;
    },
  };
}

function propertyField(schema, path, key, value, required) {
  const label = schema.title || key;
  const description = schema.description;
  const initial = value !== undefined ? value : schema.default;
  const options = { description, required };
  let made;
  if (schema.oneOf) made = variantField(schema, path, label, initial, options);
  else if (schema.type === 'object' && schema.properties) made = nestedObject(schema, path, label, initial, options);
  else if (schema.type === 'object') made = mapField(schema, path, label, initial, options);
  else if (schema.enum) made = enumField(schema, path, label, initial, options);
  else if (schema.type === 'boolean') made = booleanField(path, label, initial, options);
  else if (schema.type === 'integer' || schema.type === 'number') made = numberField(schema, path, label, initial, options);
  else if (schema.type === 'string') made = stringField(schema, path, key, label, initial, options);
  else made = jsonField(path, label, initial, required, description);
  return { ...made, key };
}

function stringField(schema, path, key, label, initial, options) {
  const secret = schema['x-secret'] === true || schema.writeOnly === true;
  const multiline = /cert|privatekey|jaas/i.test(key);
  const placeholder = schema.examples && schema.examples.length ? String(schema.examples[0]) : undefined;
  const control = multiline
    ? h('textarea', { rows: 4, spellcheck: 'false', autocomplete: 'off', placeholder, class: secret ? 'secret' : null })
    : h('input', { type: secret ? 'password' : 'text', autocomplete: secret ? 'new-password' : 'off', placeholder,
      spellcheck: 'false' });
  // A secret is never pre-filled: the API sends only its mask. Left empty while one is stored,
  // the mask goes back, which keeps the stored value.
  const stored = secret && initial === MASK;
  if (stored) control.placeholder = 'Stored: leave empty to keep it';
  if (!secret && initial !== undefined && initial !== null) control.value = String(initial);
  return {
    element: field(path, label, control, options),
    read: () => (control.value === '' ? (stored ? MASK : undefined) : control.value),
  };
}

function numberField(schema, path, label, initial, options) {
  const control = h('input', { type: 'number', inputmode: schema.type === 'integer' ? 'numeric' : 'decimal',
    step: schema.type === 'integer' ? '1' : 'any', min: schema.minimum, max: schema.maximum });
  if (initial !== undefined && initial !== null) control.value = String(initial);
  const bounds = [schema.minimum !== undefined ? `at least ${schema.minimum}` : null,
    schema.maximum !== undefined ? `at most ${schema.maximum}` : null].filter(Boolean).join(', ');
  const description = [options.description, bounds ? `(${bounds})` : null].filter(Boolean).join(' ');
  return {
    element: field(path, label, control, { ...options, description }),
    // An unparsable number is sent as typed, so that the driver's own message explains it.
    read: () => (control.value.trim() === '' ? undefined : Number.isFinite(Number(control.value)) ? Number(control.value) : control.value),
  };
}

function booleanField(path, label, initial, options) {
  const control = h('input', { type: 'checkbox', checked: initial === true });
  return { element: field(path, label, control, { ...options, inline: true }), read: () => control.checked };
}

function enumField(schema, path, label, initial, options) {
  const control = h('select', {},
    options.required || schema.default !== undefined ? null : h('option', { value: '' }, '(not set)'),
    schema.enum.map((v) => h('option', { value: JSON.stringify(v), selected: v === initial }, String(v))));
  return {
    element: field(path, label, control, options),
    read: () => (control.value === '' ? undefined : JSON.parse(control.value)),
  };
}

function nestedObject(schema, path, label, initial, options) {
  const inner = objectFields(schema, path, initial || {});
  return {
    element: h('fieldset', { class: 'group', dataset: { field: path } },
      h('legend', {}, label),
      options.description ? h('p', { class: 'help' }, options.description) : null,
      h('p', { class: 'field-error', hidden: true }),
      inner.element),
    read: inner.read,
  };
}

function variantField(schema, path, label, initial, options) {
  const variants = schema.oneOf.map((branch) => ({ branch, name: branch.properties?.type?.const }));
  const start = (initial && initial.type) || variants[0].name;
  const select = h('select', {}, variants.map((v) =>
    h('option', { value: v.name, selected: v.name === start }, v.branch.title || v.name)));
  const holder = h('div', {});
  let current;
  function show(name, value) {
    const variant = variants.find((v) => v.name === name) || variants[0];
    current = objectFields(variant.branch, path, value || {});
    fill(holder, current.element);
  }
  select.addEventListener('change', () => show(select.value, {}));
  show(start, initial);
  const typeField = field(`${path}.type`, 'Type', select, { description: variants.find((v) => v.name === start)?.branch.properties?.type?.description });
  return {
    element: h('fieldset', { class: 'group', dataset: { field: path } },
      h('legend', {}, label),
      options.description ? h('p', { class: 'help' }, options.description) : null,
      h('p', { class: 'field-error', hidden: true }),
      typeField, holder),
    read: () => current.read(),
  };
}

function mapField(schema, path, label, initial, options) {
  const rows = h('div', { class: 'rows' });
  const addRow = (k = '', v = '') => {
    const keyInput = h('input', { type: 'text', value: k, 'aria-label': `${label}: name`, placeholder: 'Name' });
    const valueInput = h('input', { type: 'text', value: v, 'aria-label': `${label}: value`, placeholder: 'Value' });
    const row = h('div', { class: 'row' }, keyInput, valueInput,
      h('button', { type: 'button', class: 'secondary small', 'aria-label': `Remove ${label} row`,
        onclick: () => { row.remove(); } }, 'Remove'));
    rows.append(row);
    return keyInput;
  };
  for (const [k, v] of Object.entries(initial && typeof initial === 'object' ? initial : {})) addRow(k, typeof v === 'string' ? v : JSON.stringify(v));
  const add = h('button', { type: 'button', class: 'secondary small', onclick: () => addRow().focus() }, `Add ${label.toLowerCase()} entry`);
  const valueType = schema.additionalProperties && schema.additionalProperties.type;
  return {
    element: h('fieldset', { class: 'group', dataset: { field: path } },
      h('legend', {}, label),
      options.description ? h('p', { class: 'help' }, options.description) : null,
      h('p', { class: 'field-error', hidden: true }),
      rows, add),
    read() {
      const out = {};
      for (const row of rows.children) {
        const [k, v] = row.querySelectorAll('input');
        if (!k.value.trim()) continue;
        out[k.value.trim()] = valueType && valueType !== 'string' ? parseLoose(v.value) : v.value;
      }
      return out;
    },
  };
}

/** A JSON text area: for a type without a schema, and for schema parts the form cannot draw. */
// `initial` null starts the field empty (read() then gives undefined: the key is left out).
export function jsonField(path, label, initial, required, description) {
  const control = h('textarea', { rows: 8, spellcheck: 'false', class: 'code' });
  control.value = initial === null ? '' : JSON.stringify(initial === undefined ? {} : initial, null, 2);
  const element = field(path, label, control, { required, description: description || 'JSON.' });
  return {
    element,
    read() {
      if (control.value.trim() === '') return undefined;
      try {
        return JSON.parse(control.value);
      } catch (e) {
        const error = new Error(`${label} is not valid JSON: ${e.message}`);
        error.fieldErrors = [{ field: path, message: `not valid JSON: ${e.message}` }];
        throw error;
      }
    },
  };
}

function parseLoose(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
