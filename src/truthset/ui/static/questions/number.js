// `number`: a number between min and max, on the spec's step grid. A number input (type it; ↑ / ↓
// step, natively) with − / + buttons for the mouse. Enter in the box moves on to the next question;
// on the last question it submits.
import { h } from '/static/widget-kit.js';

/** Decimal places of a number as written (0.25 -> 2), so stepping never shows 0.30000000000000004. */
function places(x) {
  const text = String(x);
  if (text.includes('e-')) return Number(text.split('e-')[1]);
  return text.includes('.') ? text.split('.')[1].length : 0;
}

/** The reviewer's words for an answer: the number with its unit ("72.5 kg"). */
export function describe(value, question) {
  if (typeof value !== 'number') return JSON.stringify(value);
  return question.unit ? `${value} ${question.unit}` : String(value);
}

export function mount(root, question, ctx) {
  const { min, max } = question;
  const step = question.step || null;
  const digits = Math.max(places(min), places(step || 1));
  const input = h('input', {
    type: 'number',
    id: `${ctx.id}-number`,
    min,
    max,
    step: step || 'any',
    inputmode: 'decimal',
    autocomplete: 'off',
    'aria-label': question.unit ? `${question.name} (${question.unit})` : question.name,
  });
  const button = (text, label, direction) => {
    const el = h('button', { type: 'button', class: 'btn btn-step', tabindex: '-1', 'aria-label': label, text });
    el.addEventListener('click', () => bump(direction));
    return el;
  };
  const range = `${min} – ${max}${step ? `, in steps of ${step}` : ''}`;
  root.append(
    h(
      'div',
      { class: 'number' },
      button('−', 'one step down', -1),
      input,
      button('+', 'one step up', 1),
      question.unit ? h('span', { class: 'number-unit', text: question.unit }) : null,
    ),
    h('p', { class: 'muted small', text: range }),
  );

  /** One step (1 without a step) up or down, on the grid from min, kept within min and max. */
  function bump(direction) {
    const current = input.value === '' ? null : Number(input.value);
    let next = current === null ? (direction > 0 ? min : max) : current + direction * (step || 1);
    if (step) next = min + Math.round((next - min) / step) * step;
    next = Math.min(max, Math.max(min, next));
    input.value = String(Number(next.toFixed(digits)));
    ctx.changed();
  }

  input.addEventListener('input', () => ctx.changed());
  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
    if (ctx.next && ctx.next()) event.preventDefault(); // else the workbench's Enter submits
  });

  return {
    get: () => (input.value === '' ? null : Number(input.value)),
    set: (value) => {
      input.value = value === null || value === undefined ? '' : String(value);
    },
    key: () => false,
    focus: () => input.focus(),
  };
}
