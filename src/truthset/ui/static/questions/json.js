// The fallback widget for a question type without a widget of its own: the answer as JSON.
import { h } from '/static/widget-kit.js';

export function mount(root, question, ctx) {
  const input = h('textarea', { id: `${ctx.id}-json`, rows: 4, class: 'mono', 'aria-label': `${question.name} (JSON)` });
  const help = h('p', { class: 'muted small', text: `No widget for the "${question.type}" type: type the answer as JSON.` });
  input.addEventListener('input', () => ctx.changed());
  root.append(help, input);
  return {
    get: () => {
      if (!input.value.trim()) return null;
      try {
        return JSON.parse(input.value);
      } catch {
        return input.value; // the server names the problem
      }
    },
    set: (value) => {
      input.value = value === null || value === undefined ? '' : JSON.stringify(value);
    },
    key: () => false,
    focus: () => input.focus(),
  };
}
