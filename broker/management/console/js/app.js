// The console's shell: hash routes, the login page, the header, and the error banner. Every view
// is a function `(main, params) => Promise` that fills `main`; a failing view shows the API's
// message instead of a blank page.

import { hasToken, login, logout, onUnauthorized } from './api.js';
import { errorBox, fill, h } from './dom.js';
import { integrationsView } from './integrations.js';
import { copyView, wizardView } from './wizard.js';
import { detailsView } from './details.js';
import { executorsView } from './executors.js';

const ROUTES = [
  [/^#\/integrations\/new$/, wizardView, 'integrations'],
  [/^#\/integrations\/([0-9a-fA-F-]{36})\/edit$/, wizardView, 'integrations'],
  [/^#\/integrations\/([0-9a-fA-F-]{36})\/copy$/, copyView, 'integrations'],
  [/^#\/integrations\/([0-9a-fA-F-]{36})$/, detailsView, 'integrations'],
  [/^#\/integrations$/, integrationsView, 'integrations'],
  [/^#\/executors$/, executorsView, 'executors'],
];

const main = document.getElementById('main');
const banner = document.getElementById('banner');
let afterLogin = '#/integrations';
let loginNote = null;

onUnauthorized((message) => {
  loginNote = `Your session ended (${message}). Log in again.`;
  if (location.hash !== '#/login') {
    afterLogin = location.hash || '#/integrations';
    location.hash = '#/login';
  }
});

document.getElementById('logout').addEventListener('click', () => {
  logout();
  loginNote = 'You are logged out.';
  location.hash = '#/login';
});

// Anything a view forgot to catch still reaches the person, not only the browser's console.
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  showBanner(event.reason && event.reason.message ? event.reason.message : String(event.reason));
});

window.addEventListener('hashchange', route);
route();

function showBanner(message) {
  fill(banner, h('span', {}, message),
    h('button', { type: 'button', class: 'link', onclick: () => { banner.hidden = true; } }, 'Dismiss'));
  banner.hidden = false;
}

async function route() {
  banner.hidden = true;
  const hash = location.hash || '#/integrations';
  const top = document.getElementById('top');
  if (hash === '#/login' || !hasToken()) {
    if (hash !== '#/login') {
      afterLogin = hash;
      location.hash = '#/login';
      return;
    }
    top.hidden = true;
    loginView();
    return;
  }
  top.hidden = false;
  const match = ROUTES.map(([pattern, view, nav]) => [hash.match(pattern), view, nav]).find(([m]) => m);
  if (!match) {
    location.hash = '#/integrations';
    return;
  }
  const [found, view, nav] = match;
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const section = h('section', { class: 'view' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(main, section);
  try {
    await view(section, found.slice(1));
  } catch (error) {
    if (error.status === 401) return;
    fill(section, h('h1', {}, 'Something went wrong'), errorBox(error),
      h('p', {}, h('a', { href: '#/integrations' }, 'Back to integrations')));
  }
  const heading = section.querySelector('h1');
  if (heading && !main.contains(document.activeElement)) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function loginView() {
  document.title = 'Log in · Tributary';
  const status = h('div', { 'aria-live': 'polite' }, loginNote ? h('p', { class: 'note' }, loginNote) : null);
  loginNote = null;
  const username = h('input', { id: 'login-username', name: 'username', type: 'email', required: true,
    autocomplete: 'username', value: 'sysadmin@thingsboard.org' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', required: true,
    autocomplete: 'current-password' });
  const submit = h('button', { type: 'submit', id: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'login', novalidate: true },
    h('h1', {}, 'Tributary console'),
    h('p', { class: 'muted' }, 'Manage and watch integrations.'),
    status,
    h('label', { for: 'login-username' }, 'User name'), username,
    h('label', { for: 'login-password' }, 'Password'), password,
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!password.value) {
      fill(status, errorBox({ message: 'Enter the password.' }, 'Cannot log in'));
      password.focus();
      return;
    }
    submit.disabled = true;
    try {
      await login(username.value.trim(), password.value);
      const target = afterLogin === '#/login' ? '#/integrations' : afterLogin;
      afterLogin = '#/integrations';
      if (location.hash === target) route();
      else location.hash = target;
    } catch (error) {
      fill(status, errorBox(error, 'Cannot log in'));
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  fill(main, form);
  (password.value ? submit : password).focus();
}
