// `label`: exactly one of N options. Radio buttons; 1-9 (or an option's hotkey) picks one.
import { optionIndexForKey, optionList } from '/static/widget-kit.js';

export function mount(root, question, ctx) {
  const { list, inputs, keys } = optionList(question, ctx, {
    type: 'radio',
    name: `${ctx.id}-choice`,
    attributes: { class: 'options', role: 'radiogroup', 'aria-label': question.name },
  });
  root.append(list);

  function pick(event, explicitOnly) {
    const index = optionIndexForKey(event, question, keys, explicitOnly);
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
