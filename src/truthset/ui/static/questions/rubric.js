// `rubric`: one scale row per criterion, each with its description and, when the spec asks, a
// comment box. Keys (when the caret is not in a comment): a digit scores the active criterion and
// moves to the next one (after the last, to the next question); ↑ / ↓ move between criteria; Tab
// walks through the scales and comment boxes; the mouse clicks a point.
import { h } from '/static/widget-kit.js';
import { scale } from '/static/questions/rating.js';

/** The reviewer's words for an answer: "criterion: score (comment)", one per scored criterion. */
export function describe(value, question) {
  if (!value || typeof value !== 'object') return JSON.stringify(value);
  return question.criteria
    .filter((criterion) => value[criterion.name])
    .map((criterion) => {
      const { score, comment } = value[criterion.name];
      return `${criterion.name.replaceAll('_', ' ')}: ${score}${comment ? ` (${comment})` : ''}`;
    })
    .join('; ');
}

export function mount(root, question, ctx) {
  const rows = question.criteria.map((criterion, index) => {
    const points = scale(criterion, `${ctx.id}-c${index}`, criterion.name);
    const comment =
      criterion.comment === 'none'
        ? null
        : h('input', {
            type: 'text',
            class: 'rubric-comment',
            maxlength: 10000,
            autocomplete: 'off',
            placeholder: criterion.comment === 'required' ? 'Comment (required)' : 'Comment (optional)',
            'aria-label': `${criterion.name} comment`,
          });
    const row = h(
      'div',
      { class: 'rubric-row', tabindex: '-1', 'data-criterion': criterion.name },
      h('div', { class: 'rubric-name', text: criterion.name.replaceAll('_', ' ') }),
      criterion.description ? h('p', { class: 'muted small rubric-description', text: criterion.description }) : null,
      points.row,
      comment,
    );
    row.addEventListener('focusin', () => activate(index));
    return { row, points, comment };
  });
  const list = h('div', { class: 'rubric', role: 'group', 'aria-label': question.name }, rows.map((r) => r.row));
  list.addEventListener('change', () => ctx.changed());
  list.addEventListener('input', () => ctx.changed());
  root.append(list);

  let active = 0;
  function activate(index) {
    active = index;
    rows.forEach((r, i) => r.row.classList.toggle('active', i === index));
  }
  function moveTo(index) {
    activate(Math.max(0, Math.min(rows.length - 1, index)));
    rows[active].row.focus();
  }
  activate(0);

  return {
    get: () => {
      const answer = {};
      question.criteria.forEach((criterion, i) => {
        const score = rows[i].points.get();
        const comment = rows[i].comment ? rows[i].comment.value : '';
        if (score === null && !comment.trim()) return;
        answer[criterion.name] = comment.trim() ? { score, comment } : { score };
      });
      return Object.keys(answer).length ? answer : null; // a partial rubric: the server names what is missing
    },
    set: (value) => {
      question.criteria.forEach((criterion, i) => {
        const entry = value && value[criterion.name];
        rows[i].points.set(entry ? entry.score : null);
        if (rows[i].comment) rows[i].comment.value = entry && typeof entry.comment === 'string' ? entry.comment : '';
      });
      activate(0);
    },
    key: (event) => {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        moveTo(active + (event.key === 'ArrowDown' ? 1 : -1));
        return true;
      }
      if (!rows[active].points.pick(event)) return false;
      ctx.changed();
      if (active === rows.length - 1) return 'next';
      moveTo(active + 1);
      return true;
    },
    focus: () => {
      const unscored = rows.findIndex((r) => r.points.get() === null);
      moveTo(unscored >= 0 ? unscored : 0);
    },
  };
}
