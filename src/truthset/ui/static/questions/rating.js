// `rating`: a point on an ordinal scale. A row of radio buttons styled as a scale.
// Keys: on a scale inside 0-9 the digit is the value; on a scale of up to 10 points, 1-9 and 0 pick
// the 1st to 10th point; longer scales use the arrow keys or the mouse.
import { h } from '/static/widget-kit.js';

export function mount(root, question, ctx) {
  const min = question.min;
  const max = question.max;
  const points = [];
  for (let value = min; value <= max; value += 1) points.push(value);
  const labels = question.labels || {};
  const digitsAreValues = min >= 0 && max <= 9;
  const keyFor = (value, index) => {
    if (digitsAreValues) return String(value);
    if (points.length <= 10) return String((index + 1) % 10);
    return null;
  };
  const inputs = [];
  const scale = h('div', { class: 'scale', role: 'radiogroup', 'aria-label': question.name });
  points.forEach((value, index) => {
    const input = h('input', { type: 'radio', name: `${ctx.id}-rating`, value: String(value) });
    inputs.push(input);
    const caption = labels[String(value)];
    scale.append(
      h(
        'label',
        { class: 'scale-point', title: caption || null },
        input,
        h('span', { class: 'scale-value', text: String(value) }),
        caption ? h('span', { class: 'scale-caption', text: caption }) : null,
      ),
    );
  });
  scale.addEventListener('change', () => ctx.changed());
  root.append(scale);

  return {
    get: () => {
      const checked = inputs.find((input) => input.checked);
      return checked ? Number(checked.value) : null;
    },
    set: (value) => {
      for (const input of inputs) input.checked = value !== null && value !== undefined && Number(input.value) === value;
    },
    key: (event) => {
      const index = points.findIndex((value, i) => keyFor(value, i) === event.key);
      if (index < 0) return false;
      inputs[index].checked = true;
      ctx.changed();
      return 'next';
    },
    focus: () => ctx.fieldset.focus(),
  };
}
