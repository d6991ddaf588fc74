// Small DOM helpers: element creation without innerHTML (every text from the API is set as
// text, never parsed as markup), times, state badges and the error box every view uses.

/** `h('a', {href: '#', class: 'x', onclick: fn}, 'text', child)`. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else if (key === 'class') element.className = value;
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key in element && typeof value !== 'string') element[key] = value;
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `element`. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/**
 * `fill` for a part of a page that is redrawn while someone may be on it with the keyboard: the
 * focus goes back to the new element with the id of the one focused before (or, when that one is
 * now disabled, to another control of the same `nav`), instead of falling back to the page.
 */
export function refill(element, ...children) {
  const active = document.activeElement;
  const focused = active && active !== element && element.contains(active) && active.id ? active.id : null;
  fill(element, ...children);
  if (focused) focusAgain(focused, element);
  return element;
}

/** Focuses the element with `id` or, when it is disabled, another control of its `nav` or of `within`. */
function focusAgain(id, within) {
  const again = document.getElementById(id);
  if (!again) return;
  const target = again.disabled
    ? (again.closest('nav') || within || again.parentElement).querySelector('button:not(:disabled), select:not(:disabled)')
    : again;
  target?.focus({ preventScroll: true });
}

let counter = 0;
/** A fresh id for label/input pairs. */
export function uid(prefix = 'f') {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** Local date and time of epoch milliseconds. */
export function time(ms) {
  if (!ms) return '—';
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toLocaleString();
}

/** Disabled / Pending / Active / Failed, as the API derives it. */
export function stateOf(integration) {
  if (!integration.enabled) return 'Disabled';
  if (!integration.status) return 'Pending';
  return integration.status.success ? 'Active' : 'Failed';
}

export function badge(text) {
  return h('span', { class: `badge badge-${String(text).toLowerCase()}` }, text);
}

/** The box that shows an API error: its message, the failure kind and any field errors. */
export function errorBox(error, title = 'Request failed') {
  const failure = error && error.failure ? FAILURES[error.failure] || error.failure : null;
  const fields = (error && error.fieldErrors) || [];
  return h('div', { class: 'error', role: 'alert' },
    h('strong', {}, failure ? `${title}: ${failure}` : title),
    h('p', { class: 'error-message' }, (error && error.message) || String(error)),
    fields.length ? h('ul', {}, fields.map((f) => h('li', {}, h('code', {}, f.field || '(configuration)'), ' ', f.message))) : null);
}

export const FAILURES = {
  CONFIGURATION_INVALID: 'configuration invalid',
  TARGET_UNREACHABLE: 'target unreachable',
  DRIVER_ERROR: 'driver error',
};

/** A button that runs `action` once at a time, disabled while it runs. */
export function actionButton(label, action, attrs = {}) {
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    // A disabled button loses the focus (and a redraw may replace it): a keyboard user is put
    // back on it, or on its replacement, rather than at the top of the page.
    const hadFocus = document.activeElement === button;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      await action();
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      const lost = !document.activeElement || document.activeElement === document.body;
      if (hadFocus && lost && !document.querySelector('dialog[open]')) {
        if (button.isConnected) button.focus({ preventScroll: true });
        else if (button.id) focusAgain(button.id);
      }
    }
  });
  return button;
}

/** A table inside a horizontally scrolling wrapper (narrow screens). */
export function table(headers, rows, caption) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, headers.map((x) => (x instanceof Node ? x : h('th', { scope: 'col' }, x))))),
      h('tbody', {}, rows)));
}

/** Asks for a confirmation in a modal dialog; resolves to true when confirmed. */
export function confirmDialog(question, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm', 'aria-label': question },
      h('p', {}, question),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close('cancel') }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', onclick: () => dialog.close('confirm') }, confirmLabel)));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'confirm');
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
