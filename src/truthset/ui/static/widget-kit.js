// Small DOM helpers for question widgets. Text always goes in as text, never as HTML.

export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The letter a candidate is shown under: A for the first shown, B for the second... */
export function letter(position) {
  return String.fromCharCode(65 + (position % 26));
}

/**
 * What a question is called on the review and task pages: its name, or for a copy asked for one
 * candidate, its group and the letter the candidate has there (as imported: the first is A).
 */
export function questionCaption(question) {
  if (question.candidate === null || question.candidate === undefined) return question.name;
  return `${question.group || question.name} (${letter(question.candidate)})`;
}

/** A candidate's text: the string itself, or its `text` or `content` (as the server reads it). */
export function candidateText(item) {
  if (typeof item === 'string') return item;
  if (item && typeof item.text === 'string') return item.text;
  if (item && typeof item.content === 'string') return item.content;
  return null;
}

/**
 * The text a question reads in a task's data: its `field`, or, for a copy of a question asked
 * `for_each` candidate (it has a `candidate` index), that candidate of the responses field.
 */
export function questionText(question, data) {
  const value = data ? data[question.field] : undefined;
  if (question.candidate === null || question.candidate === undefined) return typeof value === 'string' ? value : '';
  return (Array.isArray(value) && candidateText(value[question.candidate])) || '';
}

/** The key that picks option `index`: its own hotkey, else 1-9 for the first nine. */
export function optionKey(option, index) {
  if (option.hotkey) return option.hotkey;
  return index < 9 ? String(index + 1) : null;
}

export function keyMatches(event, key) {
  return key !== null && key !== undefined && event.key.toLowerCase() === String(key).toLowerCase();
}

/**
 * The option list of a choice question: one input (`type` radio or checkbox) per option, its text
 * and its key shown. A change calls ctx.changed(). Returns the list, the inputs and their keys.
 */
export function optionList(question, ctx, { type, name, attributes }) {
  const inputs = [];
  const keys = [];
  const list = h('div', attributes);
  question.options.forEach((option, index) => {
    const key = optionKey(option, index);
    const input = h('input', { type, name, value: option.value });
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
  return { list, inputs, keys };
}

/**
 * The option a key press names, or -1. `explicitOnly` (a key typed outside the widget) counts only
 * options with a hotkey of their own, so 1-9 stay free for the question that has the focus.
 */
export function optionIndexForKey(event, question, keys, explicitOnly) {
  return keys.findIndex((key, i) => (!explicitOnly || question.options[i].hotkey) && keyMatches(event, key));
}

/** The widget module of each question type used (`urls`: type -> module URL); a type whose module
 * fails to load falls back to the plain JSON editor, so a page never stops at a missing widget. */
export async function widgetModules(questions, urls) {
  const types = [...new Set(questions.map((q) => q.type))];
  const modules = {};
  await Promise.all(
    types.map(async (type) => {
      try {
        modules[type] = await import(urls[type]);
      } catch {
        modules[type] = await import('/static/questions/json.js');
      }
    }),
  );
  return modules;
}

/** Add the widgets' own keys (a widget's optional `help`: [[keys], what they do]) to a keyboard help
 * list (`keymap`, a <dl>), each entry once. */
export function listWidgetKeys(keymap, widgets) {
  if (!keymap) return;
  const listed = new Set();
  for (const widget of widgets) {
    for (const [keys, does] of widget.help || []) {
      const id = `${keys.join(' ')}|${does}`;
      if (listed.has(id)) continue;
      listed.add(id);
      const terms = keys.flatMap((key, i) => (i ? [' ', h('kbd', { text: key })] : [h('kbd', { text: key })]));
      keymap.append(h('div', { 'data-widget-help': '' }, h('dt', {}, terms), h('dd', { text: does })));
    }
  }
}
