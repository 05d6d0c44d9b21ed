// The spec editor (new, duplicate and edit project pages).
//
// The spec and the policy are JSON in textareas with line numbers (CodeMirror 6 needs a bundler:
// its packages import each other by bare names, which a browser resolves only through an import
// map, an inline script the page's CSP forbids; docs/workbench.md says more). Two small forms add
// a field or a question to the same JSON. As the manager types, the server checks the whole draft
// (POST /specs/validate: the same rules and field-named messages as creating or updating the
// project); a draft it accepts is previewed with the real widget modules, on a sample task built
// from the fields. Saving goes through the API, whose error is shown next to the field it names.
import { api, ApiError } from './api.js';
import { renderFields } from './fields.js';
import { renderMarkdown } from './markdown.js';
import { mountPolicyForm } from './policy-form.js';
import { h, widgetModules } from './widget-kit.js';

const config = JSON.parse(document.getElementById('editor-config').textContent);
const $ = (id) => document.getElementById(id);
const form = $('project-form');
const inputs = {
  name: $('f-name'),
  description: $('f-description'),
  instructions: $('f-instructions'),
  spec: $('f-spec'),
  quality: $('f-quality'),
};
const CHECK_DELAY_MS = 300; // a pause in typing, not a timer anything waits on
let checkTimer = null;
let checkSeq = 0;

// --- errors next to their field ------------------------------------------------------------------

/** The form field an API error names: "spec.questions[0].options" -> spec, "quality.x" -> quality. */
function fieldOf(name) {
  const head = String(name || '').split(/[.[]/)[0];
  return head in inputs ? head : null;
}

function showError(field, message) {
  const el = document.querySelector(`[data-error-for="${field}"]`);
  el.textContent = message;
  el.hidden = false;
  inputs[field].setAttribute('aria-invalid', 'true');
}

function clearError(field) {
  const el = document.querySelector(`[data-error-for="${field}"]`);
  el.hidden = true;
  el.textContent = '';
  inputs[field].removeAttribute('aria-invalid');
}

function formError(message) {
  $('form-error').textContent = message;
  $('form-error').hidden = !message;
}

function showApiError(error) {
  const field = error instanceof ApiError ? fieldOf(error.details && error.details.field) : null;
  if (field) showError(field, error.message);
  else formError(error instanceof ApiError ? error.message : `The server could not be reached (${error.message}).`);
  return field;
}

// --- JSON with line numbers ------------------------------------------------------------------------

function lineNumbers(textarea) {
  const gutter = document.querySelector(`.line-numbers[data-for="${textarea.id}"]`);
  const count = textarea.value.split('\n').length;
  gutter.textContent = Array.from({ length: count }, (_, i) => i + 1).join('\n');
  gutter.scrollTop = textarea.scrollTop;
}

/** The JSON of a textarea, or throws an Error whose message names the line. */
function parseJson(field) {
  const text = inputs[field].value;
  try {
    return JSON.parse(text);
  } catch (error) {
    const at = /position (\d+)/.exec(error.message);
    const line = at ? text.slice(0, Number(at[1])).split('\n').length : null;
    throw new Error(`${field}: not valid JSON${line ? ` (line ${line})` : ''}: ${error.message}`);
  }
}

function setJson(field, value) {
  inputs[field].value = JSON.stringify(value, null, 2);
  lineNumbers(inputs[field]);
}

// --- the server's check, and the preview ----------------------------------------------------------

function scheduleCheck() {
  clearTimeout(checkTimer);
  $('check-state').textContent = 'Checking…';
  checkTimer = setTimeout(check, CHECK_DELAY_MS);
}

async function check() {
  const seq = ++checkSeq;
  let body;
  try {
    body = { spec: parseJson('spec'), quality: parseJson('quality') };
  } catch (error) {
    const field = error.message.startsWith('quality') ? 'quality' : 'spec';
    clearError(field === 'spec' ? 'quality' : 'spec');
    showError(field, error.message);
    $('check-state').textContent = '';
    form.dataset.state = 'invalid';
    return;
  }
  if (config.project_id) body.project_id = config.project_id;
  try {
    const { data } = await api('POST', '/specs/validate', { body });
    if (seq !== checkSeq) return; // a newer draft is being checked
    clearError('spec');
    clearError('quality');
    $('check-state').textContent = 'The spec is valid.';
    form.dataset.state = 'valid';
    await preview(body.spec.fields, data.questions);
  } catch (error) {
    if (seq !== checkSeq) return;
    clearError('spec');
    clearError('quality');
    if (!showApiError(error)) showError('spec', error.message);
    $('check-state').textContent = '';
    form.dataset.state = 'invalid';
  }
}

const SAMPLE_REPLIES = ['Paris is the capital.', 'It is **Paris**.', 'Lyon, I think.'];
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const SAMPLE_CONVERSATION = [
  { role: 'user', content: 'What is the capital of France?' },
  { role: 'assistant', content: 'The capital of France is **Paris**.' },
];

/** A made-up value for each field, so every widget has something to work on. */
function sampleData(fields) {
  const data = {};
  for (const field of fields) {
    const caption = field.label || field.name;
    data[field.name] = {
      text: `A sample text for "${caption}": the service was quick and the staff were friendly.`,
      image: '/static/favicon.svg',
      html: `<p>Sample HTML for <b>${caption}</b>.</p>`,
      responses: Array.from({ length: field.count || 2 }, (_, i) => ({ text: SAMPLE_REPLIES[i % SAMPLE_REPLIES.length] })),
      conversation: SAMPLE_CONVERSATION,
    }[field.type];
  }
  return data;
}

function legendOf(question, index) {
  const isCopy = question.candidate !== null && question.candidate !== undefined;
  const legend = h('legend', {}, h('span', { class: 'q-number', 'aria-hidden': 'true', text: index + 1 }));
  legend.append((isCopy ? question.group : question.name).replace(/_/g, ' '));
  if (isCopy) legend.append(' ', h('span', { class: 'badge q-candidate', text: LETTERS[question.candidate] }));
  if (!question.required) legend.append(' ', h('span', { class: 'muted', text: '(optional)' }));
  return legend;
}

async function preview(fields, questions) {
  const root = $('preview-questions');
  const data = sampleData(fields);
  const urls = Object.fromEntries(questions.map((q) => [q.type, `${config.widget_base}${encodeURIComponent(q.type)}.js`]));
  const modules = await widgetModules(questions, urls);
  const fieldsets = questions.map((question, index) => {
    const legend = legendOf(question, index);
    const widget = h('div', { class: 'widget' });
    const fieldset = h(
      'fieldset',
      { class: 'question card', 'data-question': question.name, 'data-type': question.type, tabindex: '-1' },
      legend,
      question.prompt ? h('div', { class: 'prompt' }, renderMarkdown(question.prompt)) : null,
      widget,
    );
    return { fieldset, widget, question, index };
  });
  root.replaceChildren(...fieldsets.map((f) => f.fieldset));
  // as the workbench does: a widget that shows the task's own data (ranking, spans) gets the task,
  // and the field it draws itself is not shown again above the questions
  const sample = { id: 'preview', task: { id: 'preview', data }, display: {} };
  const owned = new Set();
  for (const { fieldset, widget, question, index } of fieldsets) {
    const ctx = { index, id: `preview-q${index}`, fieldset, changed: () => {}, next: () => false };
    try {
      const mounted = modules[question.type].mount(widget, question, ctx);
      if (mounted.ownsField) owned.add(mounted.ownsField);
      if (mounted.task) mounted.task(sample);
      if (mounted.set) mounted.set(null, data);
    } catch (error) {
      widget.replaceChildren(h('p', { class: 'muted', text: `No preview for this question: ${error.message}` }));
    }
  }
  renderFields($('preview-fields'), fields.filter((field) => !owned.has(field.name)), data);
  $('preview').dataset.state = 'ready';
}

function renderInstructions() {
  $('instructions-preview').replaceChildren(renderMarkdown(inputs.instructions.value));
}

// --- the forms that add to the JSON ---------------------------------------------------------------

/** "value = caption [k]" lines -> options ({value, label, hotkey}, or the plain value). */
function parseOptions(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const match = /^(.*?)(?:\s*=\s*(.*?))?(?:\s*\[(.)\])?$/.exec(line);
      const [, value, label, hotkey] = match;
      if (!label && !hotkey) return value;
      const option = { value };
      if (label) option.label = label;
      if (hotkey) option.hotkey = hotkey;
      return option;
    });
}

/** A new question of `type` with the settings each type needs to start from. */
function newQuestion(type, name, prompt, required, options, fields) {
  const question = { name, type, prompt, required };
  const fieldOfType = (kind) => (fields.find((f) => f.type === kind) || {}).name;
  if (type === 'label' || type === 'labels') question.options = options.length ? options : ['yes', 'no'];
  if (type === 'rating') Object.assign(question, { min: 1, max: 5 });
  if (type === 'spans') Object.assign(question, { field: fieldOfType('text'), labels: options.length ? options : ['entity'] });
  if (type === 'boxes' || type === 'polygons') Object.assign(question, { field: fieldOfType('image'), labels: options.length ? options : ['object'] });
  if (type === 'ranking') question.field = fieldOfType('responses');
  if (type === 'rubric') question.criteria = [{ name: 'quality' }];
  if (!prompt) delete question.prompt;
  return question;
}

function addTo(kind, build, errorId) {
  const error = $(errorId);
  error.hidden = true;
  let spec;
  try {
    spec = parseJson('spec');
  } catch (parseError) {
    error.textContent = `Fix the spec's JSON first: ${parseError.message}`;
    error.hidden = false;
    return false;
  }
  const item = build(spec);
  if (!item.name) {
    error.textContent = `${kind} name: enter a name (letters, digits, _ and -).`;
    error.hidden = false;
    return false;
  }
  const list = kind === 'Field' ? 'fields' : 'questions';
  spec[list] = Array.isArray(spec[list]) ? spec[list] : [];
  spec[list].push(item);
  setJson('spec', spec);
  scheduleCheck();
  return true;
}

function addField() {
  const done = addTo(
    'Field',
    () => {
      const field = { name: $('af-name').value.trim(), type: $('af-type').value, required: $('af-required').checked };
      if ($('af-label').value.trim()) field.label = $('af-label').value.trim();
      return field;
    },
    'err-add-field',
  );
  if (done) {
    $('af-name').value = '';
    $('af-label').value = '';
  }
}

function addQuestion() {
  const done = addTo(
    'Question',
    (spec) =>
      newQuestion(
        $('aq-type').value,
        $('aq-name').value.trim(),
        $('aq-prompt').value.trim(),
        $('aq-required').checked,
        parseOptions($('aq-options').value),
        Array.isArray(spec.fields) ? spec.fields : [],
      ),
    'err-add-question',
  );
  if (done) {
    for (const id of ['aq-name', 'aq-prompt', 'aq-options']) $(id).value = '';
  }
}

// --- saving ----------------------------------------------------------------------------------------

async function save(event) {
  event.preventDefault();
  formError('');
  for (const field of Object.keys(inputs)) clearError(field);
  let body;
  try {
    body = {
      name: inputs.name.value.trim(),
      description: inputs.description.value,
      instructions: inputs.instructions.value,
      spec: parseJson('spec'),
      quality: parseJson('quality'),
    };
  } catch (error) {
    showError(error.message.startsWith('quality') ? 'quality' : 'spec', error.message);
    return;
  }
  if (!body.name) {
    showError('name', 'name: enter a name for the project.');
    inputs.name.focus();
    return;
  }
  $('save').disabled = true;
  try {
    const { data } = config.project_id
      ? await api('PATCH', `/projects/${encodeURIComponent(config.project_id)}`, { body })
      : await api('POST', '/projects', { body });
    window.location.assign(`/projects/${encodeURIComponent(data.id)}`);
  } catch (error) {
    const field = showApiError(error);
    if (field) inputs[field].focus();
    $('save').disabled = false;
  }
}

// --- start -------------------------------------------------------------------------------------------

function start() {
  setJson('spec', config.values.spec);
  setJson('quality', config.values.quality);
  const refreshPolicyForm = mountPolicyForm($('policy-form'), config.policy_controls, {
    read: () => parseJson('quality'),
    write: (policy) => {
      setJson('quality', policy);
      scheduleCheck();
    },
  });
  for (const field of ['spec', 'quality']) {
    const textarea = inputs[field];
    textarea.addEventListener('input', () => {
      lineNumbers(textarea);
      if (field === 'quality') refreshPolicyForm();
      scheduleCheck();
    });
    textarea.addEventListener('scroll', () => lineNumbers(textarea));
  }
  inputs.instructions.addEventListener('input', renderInstructions);
  for (const field of ['name', 'description', 'instructions']) inputs[field].addEventListener('input', () => clearError(field));
  form.addEventListener('click', (event) => {
    const action = event.target.closest('[data-action]');
    if (!action) return;
    if (action.dataset.action === 'add-field') addField();
    if (action.dataset.action === 'add-question') addQuestion();
  });
  form.addEventListener('submit', save);
  renderInstructions();
  check();
}

start();
