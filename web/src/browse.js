// Browse: the public list of ready videos, newest first, a page at a time.

import { api } from './api.js';
import { el } from './dom.js';
import { gateShort } from './gate.js';

const PAGE = 12;

export function videoCard(v, extra) {
  return el('li', { class: 'card' },
    el('a', { href: `/watch/${v.id}`, class: 'thumb', 'aria-hidden': 'true', tabindex: '-1' },
      // The poster is public like the title (no sign-in needed); the initial where there is none.
      v.poster_url
        ? el('img', { src: v.poster_url, alt: '', loading: 'lazy', width: 320, height: 180 })
        : el('span', {}, (v.title || '?').slice(0, 1).toUpperCase())),
    el('h3', {}, el('a', { href: `/watch/${v.id}` }, v.title)),
    el('p', { class: 'muted' }, gateShort(v.gate), ' · ', new Date(v.created_at * 1000 || v.created_at).toLocaleDateString()),
    extra ?? '');
}

export function browsePage() {
  const list = el('ul', { class: 'grid', 'aria-label': 'Videos' });
  const more = el('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const status = el('p', { class: 'muted', role: 'status' }, 'Loading…');
  let cursor = null;
  async function load() {
    more.disabled = true;
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (cursor) q.set('cursor', cursor);
      const page = await api('GET', `/api/v1/videos?${q}`, { auth: false });
      list.append(...page.items.map((v) => videoCard(v)));
      cursor = page.next_cursor ?? null;
      more.hidden = !cursor;
      status.textContent = list.children.length === 0 ? 'No videos yet. Creators publish from the Studio.' : '';
    } catch (e) {
      status.textContent = `Videos could not be loaded: ${e.message}`;
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', load);
  load();
  return { title: 'Browse', node: el('section', {}, el('h1', {}, 'Latest videos'), status, list, more) };
}
