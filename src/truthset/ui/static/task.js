// The task page in words: the result and every response's answer are rendered on the server as the
// JSON they are stored as; this module adds, for each, what the question type's widget module says
// they are (its optional describe(value, question, data), the reviewer workbench's mechanism), e.g.
// "Car: box 12,30 80x40", and the result's shapes drawn over the image (its optional preview()). The
// JSON stays in the history: it shows what was stored, exactly.
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

function describeResponses(describers) {
  for (const cell of document.querySelectorAll('#history tr[data-kind="response"] td[data-answer]')) {
    const answer = JSON.parse(cell.dataset.answer) || {};
    const parts = config.questions.filter((q) => q.name in answer).map((q) => `${questionCaption(q)}: ${words(describers, q, answer[q.name])}`);
    cell.prepend(h('p', { class: 'answer-words', text: parts.join(' · ') }));
  }
}

async function start() {
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
}

start(); // the JSON the server rendered stays if this fails: nothing is lost, only less readable
