// `label`: exactly one of N options. Radio buttons; 1-9 (or an option's hotkey) picks one.
import { h, keyMatches, optionKey } from '/static/widget-kit.js';

export function mount(root, question, ctx) {
  const inputs = [];
  const keys = [];
  const list = h('div', { class: 'options', role: 'radiogroup', 'aria-label': question.name });
  question.options.forEach((option, index) => {
    const key = optionKey(option, index);
    const input = h('input', { type: 'radio', name: `${ctx.id}-choice`, value: option.value });
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

  function pick(event, explicitOnly) {
    const index = keys.findIndex(
      (key, i) => (!explicitOnly || question.options[i].hotkey) && keyMatches(event, key),
    );
    if (index < 0) return false;
    inputs[index].checked = true;
    ctx.changed();
    return 'next';
  }

  return {
    get: () => {
      const checked = inputs.find((input) => input.checked);
      return checked ? checked.value : null;
    },
    set: (value) => {
      for (const input of inputs) input.checked = input.value === value;
    },
    key: (event) => pick(event, false),
    globalKey: (event) => pick(event, true),
    focus: () => ctx.fieldset.focus(),
  };
}
