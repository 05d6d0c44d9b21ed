// `rating`: a point on an ordinal scale. A row of radio buttons styled as a scale.
// Keys: on a scale inside 0-9 the digit is the value; on a scale of up to 10 points, 1-9 and 0 pick
// the 1st to 10th point; longer scales use the arrow keys or the mouse.
import { h } from '/static/widget-kit.js';

/**
 * A scale from `min` to `max` with optional captions per point (`labels`): radio buttons named
 * `name`, their row, and `pick(event)`, which checks the point a key names (true) or returns false.
 * Shared with the `rubric` widget (one scale per criterion).
 */
export function scale({ min, max, labels = {} }, name, ariaLabel) {
  const points = [];
  for (let value = min; value <= max; value += 1) points.push(value);
  const digitsAreValues = min >= 0 && max <= 9;
  const keyFor = (value, index) => {
    if (digitsAreValues) return String(value);
    if (points.length <= 10) return String((index + 1) % 10);
    return null;
  };
  const inputs = [];
  const row = h('div', { class: 'scale', role: 'radiogroup', 'aria-label': ariaLabel });
  points.forEach((value) => {
    const input = h('input', { type: 'radio', name, value: String(value) });
    inputs.push(input);
    const caption = (labels || {})[String(value)];
    row.append(
      h(
        'label',
        { class: 'scale-point', title: caption || null },
        input,
        h('span', { class: 'scale-value', text: String(value) }),
        caption ? h('span', { class: 'scale-caption', text: caption }) : null,
      ),
    );
  });
  return {
    row,
    inputs,
    get: () => {
      const checked = inputs.find((input) => input.checked);
      return checked ? Number(checked.value) : null;
    },
    set: (value) => {
      for (const input of inputs) input.checked = value !== null && value !== undefined && Number(input.value) === value;
    },
    pick: (event) => {
      const index = points.findIndex((value, i) => keyFor(value, i) === event.key);
      if (index < 0) return false;
      inputs[index].checked = true;
      return true;
    },
  };
}

export function mount(root, question, ctx) {
  const points = scale(question, `${ctx.id}-rating`, question.name);
  points.row.addEventListener('change', () => ctx.changed());
  root.append(points.row);

  return {
    get: points.get,
    set: points.set,
    key: (event) => {
      if (!points.pick(event)) return false;
      ctx.changed();
      return 'next';
    },
    focus: () => ctx.fieldset.focus(),
  };
}
