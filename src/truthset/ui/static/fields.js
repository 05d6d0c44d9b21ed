// Task fields: what the worker looks at. Everything from the task goes in as text or as an
// attribute; HTML fields go into a sandboxed iframe (no scripts, a unique origin), never the page.
import { h } from './widget-kit.js';

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

function responseItem(item, index) {
  const text = typeof item === 'string' ? item : item && typeof item.text === 'string' ? item.text : JSON.stringify(item);
  const who = item && typeof item === 'object' ? item.model || item.name || item.label || item.id : null;
  return h(
    'li',
    { class: 'response' },
    h('div', { class: 'response-head' }, h('span', { class: 'badge', text: String.fromCharCode(65 + (index % 26)) }), who ? h('span', { class: 'muted', text: String(who) }) : null),
    h('div', { class: 'response-text', text }),
  );
}

function renderValue(field, value) {
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
      return h('ol', { class: 'responses' }, (Array.isArray(value) ? value : [value]).map(responseItem));
    default:
      return h('pre', { class: 'mono', text: JSON.stringify(value, null, 2) });
  }
}

export function renderFields(root, fields, data) {
  const sections = [];
  for (const field of fields) {
    const value = data ? data[field.name] : undefined;
    if (value === undefined || value === null) continue;
    sections.push(
      h(
        'section',
        { class: `field field-${field.type}`, 'data-field': field.name },
        h('h2', { class: 'field-label', text: field.label || field.name }),
        renderValue(field, value),
      ),
    );
  }
  root.replaceChildren(...sections);
}
