// `spans`: mark entities in a text field. The widget shows the text itself (the workbench leaves the
// field out of the fields panel) with each span highlighted in its label's colour AND followed by
// its label's name (drawn by CSS from a data attribute, so it is never part of the selectable text).
//
// Offsets in answers count Unicode code points, as Python's str does; the browser's strings count
// UTF-16 units (an emoji is two), so every offset crosses `toPoint` / `toUnit` below.
//
// Mouse: drag over the text, then click a label (or press its key). Keyboard: ←/→ move the caret a
// word (the first press collapses a selection to its edge, as in an editor), Shift+←/→ extend the
// selection a word, Home/End jump to the first/last word, a label's key
// marks the selection (the word at the caret when nothing is extended), Backspace/Delete remove
// the spans under the caret. The list under the text names every span: focus one (Tab, ↑/↓) and
// press Delete, or click its ×.
import { h, keyMatches, optionKey, questionText } from '/static/widget-kit.js';

const COLOURS = 8; // .span-c0 ... .span-c7 in app.css
const TOKEN = /[\p{L}\p{N}\p{M}_]+|\S/gu; // words, and every other visible character on its own

/** Code-point <-> UTF-16 offset tables of a text. */
function offsetTables(text) {
  const unitOf = [0]; // code point index -> UTF-16 offset
  const pointOf = new Array(text.length + 1); // UTF-16 offset -> code point index (rounded down)
  let unit = 0;
  for (const char of text) {
    pointOf[unit] = unitOf.length - 1;
    if (char.length === 2) pointOf[unit + 1] = unitOf.length - 1;
    unit += char.length;
    unitOf.push(unit);
  }
  pointOf[unit] = unitOf.length - 1;
  return { unitOf, pointOf };
}

/** An answer in words, for the review page: `Person “Ada Lovelace” 2-14; Place “London” 38-44`. */
export function describe(value, question, data) {
  if (!Array.isArray(value)) return JSON.stringify(value);
  if (!value.length) return 'no spans';
  const points = Array.from(questionText(question, data));
  const names = new Map(question.labels.map((option) => [option.value, option.label || option.value]));
  return value
    .map((s) => `${names.get(s.label) || s.label} “${points.slice(s.start, s.end).join('')}” ${s.start}-${s.end}`)
    .join('; ');
}

export function mount(root, question, ctx) {
  const labels = question.labels.map((option, index) => ({
    value: option.value,
    name: option.label || option.value,
    key: optionKey(option, index),
    colour: `span-c${index % COLOURS}`,
  }));
  const labelIndex = new Map(labels.map((label, index) => [label.value, index]));
  const state = { text: '', tables: offsetTables(''), tokens: [], spans: [], anchor: -1, head: -1, selection: null };

  const hintId = `${ctx.id}-spans-hint`;
  const textBox = h('div', {
    class: 'span-text',
    tabindex: '0',
    role: 'group',
    'aria-label': `Text to mark (${question.field})`,
    'aria-describedby': hintId,
    'data-field': question.field,
  });
  const bar = h(
    'div',
    { class: 'span-labels', role: 'group', 'aria-label': 'Labels' },
    labels.map((label) =>
      h(
        'button',
        { type: 'button', class: `span-label ${label.colour}`, tabindex: '-1', 'data-label': label.value },
        h('span', { class: 'span-swatch', 'aria-hidden': 'true' }),
        h('span', { text: label.name }),
        label.key ? h('kbd', { text: label.key, 'aria-hidden': 'true' }) : null,
      ),
    ),
  );
  const hint = h('p', {
    class: 'muted small',
    id: hintId,
    text: 'Select with the mouse, or with ←/→ (a word) and Shift+←/→ (extend); then a label or its key. Backspace/Delete removes the span at the caret.',
  });
  const status = h('p', { class: 'span-status small', role: 'status', 'aria-live': 'polite' });
  const list = h('ul', { class: 'span-list', 'aria-label': 'Marked spans' });
  root.append(bar, textBox, hint, status, list);

  // --- the model ---------------------------------------------------------------------------------

  function load(text) {
    state.text = typeof text === 'string' ? text : '';
    state.tables = offsetTables(state.text);
    state.tokens = [...state.text.matchAll(TOKEN)].map((m) => ({
      start: state.tables.pointOf[m.index],
      end: state.tables.pointOf[m.index + m[0].length],
    }));
    state.anchor = state.head = -1;
    state.selection = null;
  }

  const compare = (a, b) => a.start - b.start || a.end - b.end || labelIndex.get(a.label) - labelIndex.get(b.label);
  const textOf = (span) => state.text.slice(state.tables.unitOf[span.start], state.tables.unitOf[span.end]);
  const overlaps = (a, b) => a.start < b.end && b.start < a.end;

  /** The range a label key marks: the mouse selection, else the words from anchor to head. */
  function selected() {
    if (state.selection) return state.selection;
    if (state.head < 0) return null;
    const first = Math.min(state.anchor, state.head);
    const last = Math.max(state.anchor, state.head);
    return { start: state.tokens[first].start, end: state.tokens[last].end };
  }

  function mark(value) {
    const range = selected();
    if (!range) {
      say('Select some text first: drag over it, or move to a word with ←/→.');
      return;
    }
    const span = { start: range.start, end: range.end, label: value };
    if (question.overlapping) {
      if (state.spans.some((s) => compare(s, span) === 0)) return;
    } else {
      state.spans = state.spans.filter((s) => !overlaps(s, span)); // a new label replaces what it covers
    }
    state.spans = [...state.spans, span].sort(compare);
    say(`Marked “${textOf(span)}” as ${labels[labelIndex.get(value)].name}.`);
    changed();
  }

  function removeAt(range) {
    const before = state.spans.length;
    state.spans = state.spans.filter((s) => !overlaps(s, range));
    if (state.spans.length === before) return false;
    say(`Removed ${before - state.spans.length} span${before - state.spans.length === 1 ? '' : 's'}.`);
    changed();
    return true;
  }

  function changed() {
    render();
    ctx.changed();
  }

  function say(message) {
    status.textContent = message;
  }

  // --- the view ----------------------------------------------------------------------------------

  function render() {
    renderText();
    renderList();
  }

  function renderText() {
    const range = selected();
    const cuts = new Set([0, state.tables.unitOf.length - 1]);
    for (const s of state.spans) cuts.add(s.start).add(s.end);
    if (range) cuts.add(range.start).add(range.end);
    const points = [...cuts].sort((a, b) => a - b);
    const pieces = [];
    for (let i = 0; i + 1 < points.length; i += 1) {
      const piece = { start: points[i], end: points[i + 1] };
      if (piece.end > piece.start) pieces.push(segment(piece, range));
    }
    textBox.replaceChildren(...pieces);
  }

  function segment(piece, range) {
    const covering = state.spans.filter((s) => s.start <= piece.start && s.end >= piece.end);
    const classes = ['seg'];
    if (covering.length) {
      const inner = covering.reduce((a, b) => (b.end - b.start < a.end - a.start ? b : a));
      classes.push('marked', labels[labelIndex.get(inner.label)].colour);
      if (covering.length > 1) classes.push('nested');
    }
    if (range && range.start <= piece.start && range.end >= piece.end) classes.push('selected');
    const ending = covering
      .filter((s) => s.end === piece.end)
      .sort((a, b) => b.start - a.start) // the inner span closes first: its name comes first
      .map((s) => labels[labelIndex.get(s.label)].name);
    return h('span', {
      class: classes.join(' '),
      'data-start': piece.start,
      'data-tags': ending.length ? ending.join(' · ') : null,
    }, textOf(piece));
  }

  function renderList() {
    list.replaceChildren(
      ...state.spans.map((span, index) =>
        h(
          'li',
          { class: 'span-item', tabindex: '0', 'data-index': index },
          h('span', { class: `span-tag ${labels[labelIndex.get(span.label)].colour}`, text: labels[labelIndex.get(span.label)].name }),
          h('span', { class: 'span-quote', text: `“${textOf(span)}”` }),
          h('span', { class: 'muted small', text: `${span.start}-${span.end}` }),
          h('button', { type: 'button', class: 'span-remove btn-quiet', tabindex: '-1', 'aria-label': `Remove “${textOf(span)}”`, text: '×' }),
        ),
      ),
    );
    list.hidden = state.spans.length === 0;
  }

  // --- mouse -------------------------------------------------------------------------------------

  /** The code point at a DOM position inside the text box: the UTF-16 length of the text before it. */
  function pointAt(node, offset) {
    const before = document.createRange();
    before.selectNodeContents(textBox);
    before.setEnd(node, offset);
    return state.tables.pointOf[before.toString().length];
  }

  function takeMouseSelection() {
    const selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return;
    const range = selection.getRangeAt(0);
    if (!textBox.contains(range.startContainer) || !textBox.contains(range.endContainer)) return;
    let start = pointAt(range.startContainer, range.startOffset);
    let end = pointAt(range.endContainer, range.endOffset);
    const points = [...state.text];
    while (start < end && /\s/u.test(points[start])) start += 1; // a drag often takes a space along
    while (end > start && /\s/u.test(points[end - 1])) end -= 1;
    selection.removeAllRanges();
    if (end <= start) return;
    state.selection = { start, end };
    const covering = state.tokens.map((t, i) => (overlaps(t, state.selection) ? i : -1)).filter((i) => i >= 0);
    if (covering.length) {
      state.anchor = covering[0];
      state.head = covering[covering.length - 1];
    }
    renderText();
    say(`“${textOf(state.selection)}” is selected: press a label's key or click a label.`);
    textBox.focus();
  }

  textBox.addEventListener('mouseup', takeMouseSelection);
  bar.addEventListener('mousedown', (event) => event.preventDefault()); // keep the text selected
  bar.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-label]');
    if (button) mark(button.dataset.label);
    textBox.focus();
  });
  list.addEventListener('click', (event) => {
    const item = event.target.closest('li.span-item');
    if (!item) return;
    const span = state.spans[Number(item.dataset.index)];
    if (event.target.closest('.span-remove')) {
      removeAt(span);
      textBox.focus();
    } else {
      state.selection = { start: span.start, end: span.end };
      renderText();
    }
  });

  // --- keyboard ----------------------------------------------------------------------------------

  function move(step, extend) {
    const last = state.tokens.length - 1;
    if (last < 0) return;
    const extended = state.selection !== null || state.anchor !== state.head;
    state.selection = null;
    if (!extend && extended && state.head >= 0) {
      // as in a text editor: an arrow first collapses a selection to its edge on that side
      state.head = step > 0 ? Math.max(state.anchor, state.head) : Math.min(state.anchor, state.head);
      state.anchor = state.head;
    } else {
      const from = state.head < 0 ? (step > 0 ? -1 : last + 1) : state.head;
      state.head = Math.max(0, Math.min(last, from + step));
      if (!extend || state.anchor < 0) state.anchor = state.head;
    }
    showCaret();
  }

  function jump(toEnd, extend) {
    if (!state.tokens.length) return;
    state.selection = null;
    state.head = toEnd ? state.tokens.length - 1 : 0;
    if (!extend || state.anchor < 0) state.anchor = state.head;
    showCaret();
  }

  function showCaret() {
    const range = selected();
    renderText();
    say(`“${textOf(range)}” (${range.start}-${range.end})`);
  }

  function listKey(event, item) {
    const index = Number(item.dataset.index);
    if (event.key === 'Delete' || event.key === 'Backspace') {
      removeAt(state.spans[index]);
      const next = list.children[Math.min(index, list.children.length - 1)];
      (next || textBox).focus();
      return true;
    }
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      const next = list.children[index + (event.key === 'ArrowDown' ? 1 : -1)];
      if (next) next.focus();
      return true;
    }
    return false;
  }

  function key(event) {
    const item = event.target instanceof Element ? event.target.closest('li.span-item') : null;
    if (item && list.contains(item) && listKey(event, item)) return true;
    switch (event.key) {
      case 'ArrowRight':
      case 'ArrowLeft':
        move(event.key === 'ArrowRight' ? 1 : -1, event.shiftKey);
        return true;
      case 'Home':
      case 'End':
        jump(event.key === 'End', event.shiftKey);
        return true;
      case 'Backspace':
      case 'Delete': {
        const range = selected();
        if (range && !removeAt(range)) say('No span here to remove.');
        return true;
      }
      default:
        break;
    }
    const label = labels.find((l) => keyMatches(event, l.key));
    if (!label) return false;
    mark(label.value);
    return true;
  }

  load('');
  render();

  return {
    // the workbench leaves the text out of the fields panel (a candidate's text stays in its list)
    ownsField: question.candidate === null || question.candidate === undefined ? question.field : null,
    help: [
      [['←', '→'], 'spans: move the caret a word'],
      [['Shift', '←', '→'], 'spans: extend the selection a word'],
      [['Home', 'End'], 'spans: first / last word'],
      ...labels.filter((l) => l.key).map((l) => [[l.key], `spans: mark the selection as ${l.name}`]),
      [['Delete'], 'spans: remove the span at the caret, or the focused one in the list (Backspace too)'],
    ],
    task: (assignment) => {
      const data = assignment && assignment.task ? assignment.task.data : null;
      load(questionText(question, data));
      state.spans = [];
      say('');
      render();
    },
    get: () => state.spans.map((s) => ({ start: s.start, end: s.end, label: s.label })),
    set: (value) => {
      const limit = state.tables.unitOf.length - 1;
      state.spans = (Array.isArray(value) ? value : [])
        .filter((s) => s && labelIndex.has(s.label) && Number.isInteger(s.start) && Number.isInteger(s.end))
        .filter((s) => s.start >= 0 && s.end > s.start && s.end <= limit)
        .map((s) => ({ start: s.start, end: s.end, label: s.label }))
        .sort(compare);
      state.anchor = state.head = -1;
      state.selection = null;
      say('');
      render();
    },
    key,
    focus: () => textBox.focus(),
  };
}
