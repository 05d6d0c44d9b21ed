// `labels`: any number of N options. Checkboxes; 1-9 (or an option's hotkey) toggles one.
import { h, keyMatches, optionKey } from '/static/widget-kit.js';

export function mount(root, question, ctx) {
  const inputs = [];
  const keys = [];
  const list = h('div', { class: 'options options-multi', role: 'group', 'aria-label': question.name });
  question.options.forEach((option, index) => {
    const key = optionKey(option, index);
    const input = h('input', { type: 'checkbox', value: option.value });
    inputs.push(input);
    keys.push(key);
    list.append(
      h(
        'label',
        { class: 'option' },
        input,
        h('span', { class: 'option-text', text: option.label || option.value }),
        key ? h('kbd', { text: key, 'aria-hidden': 'true' }) : null,
      ),
    );
  });
  list.addEventListener('change', () => ctx.changed());
  root.append(list);
  if (question.min_selected || question.max_selected) {
    const bounds = [];
    if (question.min_selected) bounds.push(`at least ${question.min_selected}`);
    if (question.max_selected) bounds.push(`at most ${question.max_selected}`);
    root.append(h('p', { class: 'muted small', text: `Select ${bounds.join(' and ')}.` }));
  }

  function toggle(event, explicitOnly) {
    const index = keys.findIndex(
      (key, i) => (!explicitOnly || question.options[i].hotkey) && keyMatches(event, key),
    );
    if (index < 0) return false;
    inputs[index].checked = !inputs[index].checked;
    ctx.changed();
    return true;
  }

  return {
    // an empty list is an answer ("none of these"); the spec's min_selected decides if it is valid
    get: () => inputs.filter((input) => input.checked).map((input) => input.value),
    set: (value) => {
      const chosen = new Set(Array.isArray(value) ? value : []);
      for (const input of inputs) input.checked = chosen.has(input.value);
    },
    key: (event) => toggle(event, false),
    globalKey: (event) => toggle(event, true),
    focus: () => ctx.fieldset.focus(),
  };
}
