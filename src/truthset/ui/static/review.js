// The reviewer workbench: claims the next task waiting for review through the REST API, shows the
// item as the workers saw it, every response with its worker and the result with its confidence,
// and takes a verdict from the keyboard: a accept, r reject (asks a reason), f fix (the annotator
// workbench's question widgets, filled with the result), n next (leave it to another reviewer).
// Nothing is kept in the browser: a claim not answered simply expires and the task is reviewed later.
import { api, retryable, serverNow } from './api.js';
import { renderFields } from './fields.js';
import { h, listWidgetKeys, questionCaption, widgetModules } from './widget-kit.js';

const config = JSON.parse(document.getElementById('review-config').textContent);
const questions = config.questions;
const $ = (id) => document.getElementById(id);
const root = $('review');
const fixForm = $('fix-form');
const rejectForm = $('reject-form');
const fieldsets = [...fixForm.querySelectorAll('fieldset.question')];
const widgets = [];
const describers = {}; // question type -> its widget module's optional describe(value, question, data)
const previewers = {}; // question type -> its optional preview(value, question, data): a picture (shapes)
const state = { panel: 'loading', item: null, mode: 'view', busy: false, active: 0, reviewed: 0 };

// --- views -------------------------------------------------------------------------------------

function setPanel(name) {
  state.panel = name;
  root.dataset.state = name;
  for (const panel of root.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== name;
  $('history-link').hidden = name !== 'task';
  updateClaim();
}

function setMode(mode) {
  state.mode = mode;
  root.dataset.mode = mode;
  rejectForm.hidden = mode !== 'reject';
  fixForm.hidden = mode !== 'fix';
  $('verdicts').hidden = mode !== 'view';
}

function notice(message) {
  const el = $('notice');
  el.textContent = message || '';
  el.hidden = !message;
}

function shown(value, question) {
  if (value === null || value === undefined) return '—';
  const describe = question && describers[question.type];
  if (describe && state.item) return describe(value, question, state.item.task.data); // e.g. spans: label “words”
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The answer's picture when its type draws one (boxes, polygons over a thumbnail), else null. */
function pictured(value, question) {
  const preview = previewers[question.type];
  return preview && state.item && value !== null && value !== undefined ? preview(value, question, state.item.task.data) : null;
}

function renderResult(task) {
  const result = task.result || {};
  const answer = result.answer || {};
  const confidence = result.confidence || {};
  const methods = result.methods || {};
  const rows = [];
  for (const question of questions) {
    if (!(question.name in answer)) continue;
    const score = typeof confidence[question.name] === 'number' ? ` · confidence ${Math.round(confidence[question.name] * 100)}%` : '';
    const method = methods[question.name] ? ` · ${methods[question.name]}` : '';
    rows.push(h('dt', { text: questionCaption(question) }), h('dd', { 'data-question': question.name }, h('strong', { text: shown(answer[question.name], question) }), h('span', { class: 'muted', text: `${score}${method}` }), pictured(answer[question.name], question)));
  }
  if (!rows.length) rows.push(h('dt', { text: 'answer' }), h('dd', { text: 'no result yet' }));
  $('result').replaceChildren(...rows);
}

function renderResponses(responses) {
  const items = responses.map((response) => {
    const parts = questions.filter((q) => q.name in response.answer).map((q) => `${questionCaption(q)}: ${shown(response.answer[q.name], q)}`);
    const who = response.worker_name || response.worker_id;
    const pictures = questions.filter((q) => q.name in response.answer).map((q) => pictured(response.answer[q.name], q));
    return h('li', { 'data-worker': response.worker_id }, h('span', { class: 'who', text: who }), response.worker_kind === 'model' ? h('span', { class: 'badge', text: 'model' }) : null, h('span', { text: parts.join(' · ') }), pictures);
  });
  $('responses').replaceChildren(...(items.length ? items : [h('li', { class: 'muted', text: 'No responses.' })]));
}

function updateClaim() {
  const el = $('claim');
  if (!state.item || state.panel !== 'task') {
    el.hidden = true;
    return;
  }
  const left = Date.parse(state.item.expires_at) - serverNow();
  el.hidden = false;
  if (left <= 0) {
    el.textContent = 'Claim expired: another reviewer may take this task';
    el.dataset.level = 'expired';
    return;
  }
  el.textContent = `Yours for ${Math.floor(left / 60000)}:${String(Math.floor(left / 1000) % 60).padStart(2, '0')}`;
  el.dataset.level = left < 60000 ? 'warn' : 'ok';
}

function show(item) {
  state.item = item;
  renderFields($('fields'), config.fields, item.task.data);
  renderResult(item.task);
  renderResponses(item.responses);
  $('task').dataset.task = item.task.id;
  $('history-link').href = `/tasks/${encodeURIComponent(item.task.id)}`;
  setMode('view');
  setPanel('task');
  root.querySelector('[data-action="accept"]').focus();
}

// --- loading -----------------------------------------------------------------------------------

async function next() {
  state.item = null;
  setMode('view');
  setPanel('loading');
  try {
    const result = await api('POST', `/projects/${encodeURIComponent(config.project_id)}/reviews/next`);
    if (result.status === 204) {
      setPanel('empty');
      root.querySelector('[data-panel="empty"] [data-action="resume"]').focus();
      return;
    }
    show(result.data);
  } catch (error) {
    failed(error);
  }
}

function failed(error) {
  $('panel-error-message').textContent = retryable(error)
    ? 'The server could not be reached. Try again in a moment.'
    : error.status === 401
      ? 'Your session has ended: sign in again.'
      : error.message;
  setPanel('error');
}

// --- verdicts ----------------------------------------------------------------------------------

async function verdict(body, done) {
  if (state.busy || !state.item) return;
  state.busy = true;
  root.setAttribute('aria-busy', 'true');
  try {
    await api('POST', `/tasks/${encodeURIComponent(state.item.task.id)}/reviews`, { body });
    state.reviewed += 1;
    $('progress').textContent = `${state.reviewed} reviewed this session`;
    notice(done);
    await next();
  } catch (error) {
    if (error.status === 422) {
      showInvalid(error);
    } else {
      notice(`The review was not saved: ${error.message}`);
    }
  } finally {
    state.busy = false;
    root.removeAttribute('aria-busy');
  }
}

function showInvalid(error) {
  const field = error.details && error.details.field;
  if (field === 'reason') {
    reasonError(error.message);
    return;
  }
  const match = /^answer\.([A-Za-z_][\w-]*): ([\s\S]*)$/.exec(error.message || '');
  const index = match ? questions.findIndex((q) => q.name === match[1]) : -1;
  if (state.mode === 'fix' && index >= 0) {
    questionError(index, match[2]);
    focusQuestion(index);
  } else {
    const el = $('fix-error');
    el.textContent = error.message;
    el.hidden = state.mode !== 'fix';
    if (state.mode !== 'fix') notice(error.message);
  }
}

function reasonError(message) {
  const el = $('reason-error');
  el.textContent = message;
  el.hidden = !message;
}

function startReject() {
  setMode('reject');
  reasonError('');
  $('reason').value = '';
  $('reason').focus();
}

function confirmReject() {
  const reason = $('reason').value.trim();
  if (!reason) {
    reasonError('Say what is wrong: a rejection needs a reason.');
    $('reason').focus();
    return;
  }
  verdict({ verdict: 'reject', reason }, 'Rejected: the task went back to the queue.');
}

function startFix() {
  const answer = (state.item.task.result && state.item.task.result.answer) || {};
  setMode('fix'); // first: a shapes widget sizes its image to the visible form
  questions.forEach((question, index) => {
    // widgets that show the task's own data (ranking, spans) get it as imported: no per-worker order here
    if (widgets[index].task) widgets[index].task({ task: state.item.task, display: {} });
    widgets[index].set(answer[question.name] ?? null, state.item.task.data); // shapes draw on the task's image
    questionError(index, '');
  });
  $('fix-error').hidden = true;
  focusQuestion(0);
}

function confirmFix() {
  const answer = {};
  let missing = -1;
  questions.forEach((question, index) => {
    const value = widgets[index].get();
    if (value !== null && value !== undefined) answer[question.name] = value;
    else if (question.required && missing < 0) missing = index;
  });
  if (missing >= 0) {
    questionError(missing, 'An answer is required.');
    focusQuestion(missing);
    return;
  }
  verdict({ verdict: 'fix', answer }, 'Fixed: your answer is the result now.');
}

async function skip() {
  if (state.busy || !state.item) return;
  try {
    await api('POST', `/tasks/${encodeURIComponent(state.item.task.id)}/reviews/skip`);
  } catch (error) {
    if (error.status !== 409) notice(`Could not leave the task: ${error.message}`);
  }
  notice('');
  await next();
}

// --- the fix form's widgets --------------------------------------------------------------------

async function loadWidgets() {
  const modules = await widgetModules(questions, config.widgets);
  for (const [type, module] of Object.entries(modules)) {
    if (module.describe) describers[type] = module.describe;
    if (module.preview) previewers[type] = module.preview;
  }
  questions.forEach((question, index) => {
    const fieldset = fieldsets[index];
    const ctx = { index, id: `fix${index}`, fieldset, changed: () => questionError(index, '') };
    widgets[index] = modules[question.type].mount(fieldset.querySelector('.widget'), question, ctx);
  });
  listWidgetKeys(root.querySelector('.keymap'), widgets);
}

function questionError(index, message) {
  const fieldset = fieldsets[index];
  const el = fieldset.querySelector('.q-error');
  el.textContent = message;
  el.hidden = !message;
  fieldset.classList.toggle('invalid', Boolean(message));
}

function focusQuestion(index) {
  if (index >= widgets.length) {
    $('fix-confirm').focus();
    return;
  }
  state.active = Math.max(0, index);
  fieldsets.forEach((fieldset, i) => fieldset.classList.toggle('active', i === state.active));
  widgets[state.active].focus();
}

// --- keyboard ----------------------------------------------------------------------------------

const TYPING = 'textarea, select, input:not([type]), input[type="text"], input[type="number"], [contenteditable]';

function onKey(event) {
  if (event.defaultPrevented || event.isComposing || state.panel !== 'task') return;
  const target = event.target instanceof Element ? event.target : null;
  const typing = Boolean(target && target.matches(TYPING));
  if (event.key === 'Escape' && state.mode !== 'view') {
    event.preventDefault();
    setMode('view');
    root.querySelector('[data-action="accept"]').focus();
    return;
  }
  if (state.mode === 'reject') {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      confirmReject();
    }
    return;
  }
  if (state.mode === 'fix') {
    fixKey(event, target, typing);
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const actions = { a: () => verdict({ verdict: 'accept' }, 'Accepted.'), r: startReject, f: startFix, n: skip };
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

function fixKey(event, target, typing) {
  if (event.key === 'Enter') {
    if (event.altKey || event.shiftKey) return;
    if (target && target.tagName === 'TEXTAREA' && !(event.ctrlKey || event.metaKey)) return;
    if (target && target.tagName === 'BUTTON') return;
    event.preventDefault();
    confirmFix();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const handled = widgets[state.active] ? widgets[state.active].key(event) : false;
  if (handled) {
    event.preventDefault();
    if (handled === 'next') focusQuestion(state.active + 1);
  }
}

function bind() {
  document.addEventListener('keydown', onKey);
  root.querySelector('[data-action="accept"]').addEventListener('click', () => verdict({ verdict: 'accept' }, 'Accepted.'));
  root.querySelector('[data-action="reject"]').addEventListener('click', startReject);
  root.querySelector('[data-action="fix"]').addEventListener('click', startFix);
  root.querySelector('[data-action="next"]').addEventListener('click', skip);
  for (const button of root.querySelectorAll('[data-action="cancel"]')) button.addEventListener('click', () => setMode('view'));
  for (const button of root.querySelectorAll('[data-action="resume"]')) button.addEventListener('click', next);
  rejectForm.addEventListener('submit', (event) => {
    event.preventDefault();
    confirmReject();
  });
  fixForm.addEventListener('submit', (event) => {
    event.preventDefault();
    confirmFix();
  });
  fixForm.addEventListener('focusin', (event) => {
    const fieldset = event.target.closest && event.target.closest('fieldset.question');
    if (fieldset) state.active = Number(fieldset.dataset.index);
  });
  setInterval(updateClaim, 1000);
}

async function start() {
  await loadWidgets();
  bind();
  await next();
}

start().catch((error) => {
  $('panel-error-message').textContent = `The review page could not start: ${error.message}`;
  setPanel('error');
});
