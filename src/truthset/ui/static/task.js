// The task page in words: the result and every response's answer are rendered on the server as the
// JSON they are stored as; this module adds, for each, what the question type's widget module says
// they are (its optional describe(value, question, data), the reviewer workbench's mechanism), e.g.
// "Car: box 12,30 80x40", and the result's shapes drawn over the image (its optional preview()). The
// JSON stays in the history: it shows what was stored, exactly.
//
// The data is drawn with the workbench's field renderers (fields.js), as the worker saw it; the
// server's plain list stays if that fails. Responses are described like the history's, and a
// review's or refit's answer change is shown as "before → after" per question that changed.
import { api } from './api.js';
import { renderFields } from './fields.js';
import { message, show } from './job-kit.js';
import { h, questionCaption, widgetModules } from './widget-kit.js';

const config = JSON.parse(document.getElementById('task-config').textContent);
const byName = new Map(config.questions.map((question) => [question.name, question]));

function words(describers, question, value) {
  const describe = describers[question.type];
  if (describe) return describe(value, question, config.data);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function describeResult(describers, previewers) {
  for (const dd of document.querySelectorAll('#task-result dd[data-answer]')) {
    const question = byName.get(dd.dataset.question);
    const value = JSON.parse(dd.dataset.answer);
    const strong = dd.querySelector('strong');
    if (!question || value === null || !strong) continue;
    if (describers[question.type]) strong.textContent = words(describers, question, value);
    const picture = previewers[question.type] ? previewers[question.type](value, question, config.data) : null;
    if (picture) dd.append(picture); // boxes, polygons: drawn over a thumbnail of the image
  }
}

function describeChanges(describers) {
  for (const cell of document.querySelectorAll('#history td[data-before][data-after]')) {
    const before = JSON.parse(cell.dataset.before) || {};
    const after = JSON.parse(cell.dataset.after) || {};
    const changed = config.questions.filter((q) => JSON.stringify(before[q.name]) !== JSON.stringify(after[q.name]));
    for (const q of changed) {
      const was = q.name in before ? words(describers, q, before[q.name]) : '—';
      cell.append(
        h('p', { class: 'answer-change' }, `${questionCaption(q)}: `, h('del', { text: was }), ' → ', h('ins', { text: words(describers, q, after[q.name]) })),
      );
    }
  }
}

function drawData() {
  const root = document.getElementById('task-data');
  if (!root || !config.fields) return;
  try {
    const drawn = h('div', { class: 'fields' });
    renderFields(drawn, config.fields, config.data);
    if (drawn.childElementCount) root.replaceChildren(...drawn.childNodes);
  } catch (error) {
    console.warn('the data stays as a list:', error); // the server's rendering is still there
  }
}

function describeResponses(describers) {
  for (const cell of document.querySelectorAll('#history tr[data-kind="response"] td[data-answer], #responses td[data-answer]')) {
    const answer = JSON.parse(cell.dataset.answer) || {};
    const parts = config.questions.filter((q) => q.name in answer).map((q) => `${questionCaption(q)}: ${words(describers, q, answer[q.name])}`);
    cell.prepend(h('p', { class: 'answer-words', text: parts.join(' · ') }));
  }
}

async function start() {
  drawData();
  const urls = Object.fromEntries(config.questions.map((q) => [q.type, `/ui/widgets/${encodeURIComponent(q.type)}.js`]));
  const modules = await widgetModules(config.questions, urls);
  const describers = {};
  const previewers = {};
  for (const [type, module] of Object.entries(modules)) {
    if (module.describe) describers[type] = module.describe;
    if (module.preview) previewers[type] = module.preview;
  }
  describeResult(describers, previewers);
  describeResponses(describers);
  describeChanges(describers);
}

start(); // the JSON the server rendered stays if this fails: nothing is lost, only less readable

// A manager's "Unmark gold" on a gold task: DELETE /tasks/{id}/gold, then the page as it now is.
async function unmarkGold() {
  const button = document.getElementById('unmark-gold');
  button.disabled = true;
  try {
    await api('DELETE', `/tasks/${encodeURIComponent(config.task_id)}/gold`);
    window.location.reload();
  } catch (error) {
    show('gold-error', message(error));
    button.disabled = false;
  }
}

document.getElementById('unmark-gold')?.addEventListener('click', unmarkGold);
