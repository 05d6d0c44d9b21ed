// `text`: free text. A single-line input or a textarea (multiline), with a character counter.
import { h } from '/static/widget-kit.js';

export function mount(root, question, ctx) {
  const attributes = {
    id: `${ctx.id}-text`,
    maxlength: question.max_length,
    'aria-label': question.name,
    autocomplete: 'off',
    spellcheck: 'true',
  };
  const input = question.multiline
    ? h('textarea', { ...attributes, rows: 4 })
    : h('input', { ...attributes, type: 'text' });
  const counter = h('span', { class: 'counter muted small', 'aria-hidden': 'true' });
  const update = () => {
    counter.textContent = `${input.value.length} / ${question.max_length}`;
  };
  input.addEventListener('input', () => {
    update();
    ctx.changed();
  });
  root.append(input, counter);
  update();

  return {
    get: () => (input.value.trim() ? input.value : null),
    set: (value) => {
      input.value = typeof value === 'string' ? value : '';
      update();
    },
    key: () => false,
    // moving here by key (or on a new task) never puts the caret in a multi-line box, where Enter
    // would be a new line instead of Submit: the question is active, Tab or a click enters the box
    focus: () => (question.multiline ? ctx.fieldset.focus() : input.focus()),
  };
}
