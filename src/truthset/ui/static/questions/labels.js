// `labels`: any number of N options. Checkboxes; 1-9 (or an option's hotkey) toggles one.
import { h, optionIndexForKey, optionList } from '/static/widget-kit.js';

export function mount(root, question, ctx) {
  const { list, inputs, keys } = optionList(question, ctx, {
    type: 'checkbox',
    attributes: { class: 'options options-multi', role: 'group', 'aria-label': question.name },
  });
  root.append(list);
  if (question.min_selected || question.max_selected) {
    const bounds = [];
    if (question.min_selected) bounds.push(`at least ${question.min_selected}`);
    if (question.max_selected) bounds.push(`at most ${question.max_selected}`);
    root.append(h('p', { class: 'muted small', text: `Select ${bounds.join(' and ')}.` }));
  }

  function toggle(event, explicitOnly) {
    const index = optionIndexForKey(event, question, keys, explicitOnly);
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
