// Task fields: what the worker looks at. Everything from the task goes in as text or as an
// attribute; HTML fields go into a sandboxed iframe (no scripts, a unique origin), never the page.
// Responses and chat turns are Markdown, rendered by markdown.js (raw HTML escaped, then sanitised).
import { renderMarkdown } from './markdown.js';
import { candidateText, h, letter } from './widget-kit.js';

export function imageSource(value) {
  if (typeof value !== 'string') return null;
  if (value.startsWith('media:')) return `/api/v1/media/${encodeURIComponent(value.slice(6))}`;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

// Images of the prefetched task, decoded before it is shown (see workbench.js): src -> <img>.
const decoded = new Map();
const DECODE_WAIT_MS = 10000; // a slow image never holds the next task back longer than this

/** Load and decode the image fields of a task ahead of showing it; resolves when done (or failed). */
export function preloadImages(fields, data) {
  decoded.clear(); // only the next task's images are kept
  const waits = fields
    .filter((field) => field.type === 'image' && data && data[field.name] != null)
    .map((field) => {
      const src = imageSource(data[field.name]);
      if (!src) return null;
      const img = h('img', { src, referrerpolicy: 'no-referrer', decoding: 'async' });
      decoded.set(src, img);
      let timer;
      const late = new Promise((resolve) => {
        timer = setTimeout(resolve, DECODE_WAIT_MS);
      });
      return Promise.race([img.decode().catch(() => {}), late]).finally(() => clearTimeout(timer));
    });
  return Promise.all(waits);
}

/** The decoded <img> preloaded for `src` (once), or undefined. */
export function takeImage(src) {
  const img = decoded.get(src);
  decoded.delete(src);
  return img;
}

/** A response's text (see candidateText), or the response as JSON when it has none. */
export function responseText(item) {
  return candidateText(item) ?? JSON.stringify(item);
}


function responseItem(item, position, index) {
  // a model name only when the server sent one (a blind comparison never does)
  const who = item && typeof item === 'object' ? item.model || item.name || item.label || item.id : null;
  return h(
    'li',
    { class: 'response', 'data-index': index, 'data-position': position },
    h('div', { class: 'response-head' }, h('span', { class: 'badge', text: letter(position) }), who ? h('span', { class: 'muted model', text: String(who) }) : null),
    h('div', { class: 'response-text' }, renderMarkdown(responseText(item))),
  );
}

/** Responses in the order the assignment shows them (`order`: task indexes), else as imported. */
function responseList(value, order) {
  const items = Array.isArray(value) ? value : [value];
  const shown = Array.isArray(order) && order.length === items.length ? order : items.map((_, i) => i);
  return h('ol', { class: 'responses', 'data-count': items.length }, shown.map((index, position) => responseItem(items[index], position, index)));
}

const ROLES = new Set(['user', 'assistant', 'system']);

function conversation(value) {
  const turns = Array.isArray(value) ? value : [];
  return h(
    'ol',
    { class: 'chat' },
    turns.map((turn) => {
      const role = turn && ROLES.has(turn.role) ? turn.role : 'unknown';
      return h(
        'li',
        { class: `turn turn-${role}`, 'data-role': role },
        h('div', { class: 'turn-role', text: role }),
        h('div', { class: 'turn-content' }, renderMarkdown(turn && typeof turn.content === 'string' ? turn.content : '')),
      );
    }),
  );
}

function renderValue(field, value, display) {
  switch (field.type) {
    case 'text':
      return h('div', { class: 'text-value', text: String(value) });
    case 'image': {
      const src = imageSource(value);
      if (!src) return h('p', { class: 'muted', text: 'The image reference is not valid.' });
      const img = takeImage(src) || h('img', { src, referrerpolicy: 'no-referrer', decoding: 'async' });
      img.className = 'image-value';
      img.alt = field.label || field.name;
      return img;
    }
    case 'html': {
      const frame = h('iframe', { class: 'html-value', title: field.label || field.name, referrerpolicy: 'no-referrer' });
      frame.setAttribute('sandbox', ''); // before srcdoc: nothing in it ever runs with privileges
      frame.srcdoc = String(value);
      return frame;
    }
    case 'responses':
      return responseList(value, display[field.name]);
    case 'conversation':
      return conversation(value);
    default:
      return h('pre', { class: 'mono', text: JSON.stringify(value, null, 2) });
  }
}

/** `display`: per responses field, the task indexes in the order this assignment shows them. */
export function renderFields(root, fields, data, display = {}) {
  const sections = [];
  for (const field of fields) {
    const value = data ? data[field.name] : undefined;
    if (value === undefined || value === null) continue;
    sections.push(
      h(
        'section',
        { class: `field field-${field.type}`, 'data-field': field.name },
        h('h2', { class: 'field-label', text: field.label || field.name }),
        renderValue(field, value, display || {}),
      ),
    );
  }
  root.replaceChildren(...sections);
}
