// `ranking`: which model response is better (pairwise), or a full order of N responses.
// Candidates are shown as A, B, C... in the order the server chose for this assignment
// (`assignment.display`); answers name them by their index in the task's data, never by position.
// Keys, pairwise: 1 / 2 pick A / B, 0 or = a tie, Shift+1..5 the strength.
// Keys, order: ↑ ↓ (or k j) select a candidate, Shift+↑ Shift+↓ (or K J) move it, t ties it with the
// one above, c confirms the order as shown. The mouse works with the buttons.
import { candidateText, h, letter } from '/static/widget-kit.js';

const TIE = 'tie';

export function mount(root, question, ctx) {
  const body = h('div', { class: `ranking ranking-${question.mode}` });
  root.append(body);
  const state = { shown: [0, 1], items: [], value: null };
  const api = question.mode === 'order' ? orderWidget(body, question, ctx, state) : pairwiseWidget(body, question, ctx, state);
  return {
    ...api,
    task: (assignment) => {
      const items = (assignment.task.data || {})[question.field];
      state.items = Array.isArray(items) ? items : [];
      const shown = (assignment.display || {})[question.field];
      state.shown = Array.isArray(shown) && shown.length === state.items.length ? shown : state.items.map((_, i) => i);
      api.render();
    },
    focus: () => ctx.fieldset.focus(),
  };
}

// --- pairwise -----------------------------------------------------------------------------------

function pairwiseWidget(body, question, ctx, state) {
  const strengths = question.strength || [];
  let winner = null; // a task index, or 'tie'
  let strength = null;
  const choices = h('div', { class: 'pair-choices', role: 'radiogroup', 'aria-label': `${question.name}: which is better` });
  const scale = h('div', { class: 'pair-strength', role: 'radiogroup', 'aria-label': `${question.name}: how much better` });
  body.append(choices, strengths.length ? scale : null);

  function choice(label, key, value) {
    const button = h('button', { type: 'button', class: 'btn choice', 'data-choice': String(value), 'aria-pressed': 'false' }, label, ' ', h('kbd', { text: key }));
    button.addEventListener('click', () => pick(value, false));
    return button;
  }

  function render() {
    const [first, second] = state.shown;
    choices.replaceChildren(
      choice('A is better', '1', first),
      question.allow_tie ? choice('Equally good', '0', TIE) : null,
      choice('B is better', '2', second),
    );
    scale.replaceChildren(
      ...strengths.map((caption, i) => {
        const button = h('button', { type: 'button', class: 'btn choice', 'data-strength': caption, 'aria-pressed': 'false' }, caption, ' ', h('kbd', { text: `Shift+${i + 1}` }));
        button.addEventListener('click', () => pickStrength(caption));
        return button;
      }),
    );
    paint();
  }

  function paint() {
    for (const button of choices.querySelectorAll('[data-choice]')) {
      button.setAttribute('aria-pressed', String(button.dataset.choice === String(winner)));
    }
    for (const button of scale.querySelectorAll('[data-strength]')) {
      button.setAttribute('aria-pressed', String(button.dataset.strength === strength));
      button.disabled = winner === TIE;
    }
    scale.hidden = winner === null || winner === TIE;
  }

  function complete() {
    return winner !== null && (winner === TIE || !strengths.length || strength !== null);
  }

  function pick(value, byKey) {
    winner = value;
    if (winner === TIE) strength = null;
    paint();
    ctx.changed();
    if (!byKey && !scale.hidden) scale.querySelector('button')?.focus();
    return complete() ? 'next' : true;
  }

  function pickStrength(caption) {
    if (winner === null || winner === TIE) return true;
    strength = caption;
    paint();
    ctx.changed();
    return complete() ? 'next' : true;
  }

  return {
    render,
    get: () => {
      if (!complete()) return null;
      return winner === TIE || !strengths.length ? { winner } : { winner, strength };
    },
    set: (value) => {
      if (Number.isInteger(value)) value = { winner: value }; // a result's answer (review: fix it)
      winner = value && (value.winner === TIE || Number.isInteger(value.winner)) ? value.winner : null;
      strength = value && typeof value.strength === 'string' ? value.strength : null;
      paint();
    },
    key: (event) => {
      const [first, second] = state.shown;
      if (event.shiftKey && /^Digit[1-9]$/.test(event.code)) {
        const caption = strengths[Number(event.code.slice(5)) - 1];
        return caption ? pickStrength(caption) : false;
      }
      if (event.shiftKey) return false;
      if (event.key === '1') return pick(first, true);
      if (event.key === '2') return pick(second, true);
      if ((event.key === '0' || event.key === '=') && question.allow_tie) return pick(TIE, true);
      return false;
    },
  };
}

// --- order --------------------------------------------------------------------------------------

function orderWidget(body, question, ctx, state) {
  let order = []; // task indexes, best first
  let tiedAbove = []; // per position: tied with the candidate above
  let selected = 0;
  let touched = false; // an order the worker never looked at is no answer
  const list = h('ol', { class: 'order-list', 'aria-label': `${question.name}: best first` });
  const confirm = h('button', { type: 'button', class: 'btn btn-quiet confirm-order' }, 'This order is right', ' ', h('kbd', { text: 'c' }));
  confirm.addEventListener('click', () => {
    touched = true;
    paint();
    ctx.changed();
  });
  body.append(list, confirm);

  function reset() {
    order = [...state.shown];
    tiedAbove = order.map(() => false);
    selected = 0;
    touched = false;
  }

  function render() {
    reset();
    paint();
  }

  function positionOf(index) {
    return state.shown.indexOf(index);
  }

  function paint() {
    list.replaceChildren(
      ...order.map((index, rank) => {
        const up = h('button', { type: 'button', class: 'btn btn-small move-up', 'aria-label': `Move ${letter(positionOf(index))} up`, text: '↑' });
        const down = h('button', { type: 'button', class: 'btn btn-small move-down', 'aria-label': `Move ${letter(positionOf(index))} down`, text: '↓' });
        up.disabled = rank === 0;
        down.disabled = rank === order.length - 1;
        up.addEventListener('click', () => move(rank, -1));
        down.addEventListener('click', () => move(rank, 1));
        let tie = null;
        if (question.allow_tie && rank > 0) {
          tie = h('label', { class: 'tie-above' }, h('input', { type: 'checkbox' }), ' = above');
          tie.querySelector('input').checked = tiedAbove[rank];
          tie.querySelector('input').addEventListener('change', (event) => toggleTie(rank, event.target.checked));
        }
        const text = candidateText(state.items[index]) ?? '';
        const row = h(
          'li',
          { class: `order-item${rank === selected ? ' selected' : ''}${tiedAbove[rank] ? ' tied' : ''}`, 'data-index': index, 'aria-selected': String(rank === selected) },
          h('span', { class: 'badge', text: letter(positionOf(index)) }),
          h('span', { class: 'order-text', text: text.length > 120 ? `${text.slice(0, 117)}…` : text }),
          tie,
          up,
          down,
        );
        row.addEventListener('click', (event) => {
          if (event.target.closest('button, label')) return;
          selected = rank;
          paint();
        });
        return row;
      }),
    );
    confirm.setAttribute('aria-pressed', String(touched));
  }

  function move(rank, step) {
    const target = rank + step;
    if (target < 0 || target >= order.length) return true;
    [order[rank], order[target]] = [order[target], order[rank]];
    selected = target;
    touched = true;
    paint();
    ctx.changed();
    return true;
  }

  function toggleTie(rank, value) {
    if (rank === 0 || !question.allow_tie) return true;
    tiedAbove[rank] = value;
    touched = true;
    paint();
    ctx.changed();
    return true;
  }

  function groups() {
    const out = [];
    order.forEach((index, rank) => {
      if (rank > 0 && tiedAbove[rank]) out[out.length - 1].push(index);
      else out.push([index]);
    });
    return out.map((group) => (group.length > 1 ? [...group].sort((a, b) => a - b) : group[0]));
  }

  return {
    render,
    get: () => (touched && order.length ? { order: groups() } : null),
    set: (value) => {
      reset();
      if (Array.isArray(value)) value = { order: value }; // a result's answer (review: fix it)
      if (!value || !Array.isArray(value.order)) {
        paint();
        return;
      }
      const flat = [];
      const tied = [];
      for (const entry of value.order) {
        const group = Array.isArray(entry) ? entry : [entry];
        group.forEach((index, i) => {
          flat.push(index);
          tied.push(i > 0);
        });
      }
      if ([...flat].sort((a, b) => a - b).join() === state.shown.map((_, i) => i).join()) {
        order = flat;
        tiedAbove = tied;
        touched = true;
      }
      paint();
    },
    key: (event) => {
      const key = event.key;
      if (key === 'ArrowUp' && event.shiftKey) return move(selected, -1);
      if (key === 'ArrowDown' && event.shiftKey) return move(selected, 1);
      if (key === 'K') return move(selected, -1);
      if (key === 'J') return move(selected, 1);
      if (event.shiftKey) return false;
      if (key === 'ArrowUp' || key === 'k') {
        selected = Math.max(0, selected - 1);
        paint();
        return true;
      }
      if (key === 'ArrowDown' || key === 'j') {
        selected = Math.min(order.length - 1, selected + 1);
        paint();
        return true;
      }
      if (key === 't' && question.allow_tie) return toggleTie(selected, !tiedAbove[selected]);
      if (key === 'c') {
        touched = true;
        paint();
        ctx.changed();
        return 'next';
      }
      return false;
    },
  };
}
