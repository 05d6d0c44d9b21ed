// The Models page: "Train now" starts a model.train job through the API (POST /projects/{id}/models,
// the session's CSRF token sent by api.js), follows it (job-kit.js) and reloads the page when a
// version is stored, so the tables come from the server; "Start labeling" starts a model.llm_label
// or model.server_predict job (POST /projects/{id}/llm-labels or /model-server-predictions) the
// same way, and the runs table shows it after the reload; the learning curve is drawn with uPlot
// (vendored, canvas-drawn, so the strict CSP holds) from the points the page was rendered with.
import uPlot from './vendor/uplot/dist/uPlot.esm.js';
import { api } from './api.js';
import { followJob, message, show, showRefusal } from './job-kit.js';
import { h } from './widget-kit.js';

const config = JSON.parse(document.getElementById('models-config').textContent);
const $ = (id) => document.getElementById(id);
const base = `/projects/${encodeURIComponent(config.project_id)}`;

function progressOf(job) {
  const bar = $('train-progress');
  const { done, total } = job.progress;
  bar.hidden = !total;
  if (total) {
    bar.max = total;
    bar.value = done;
  }
  const step = total ? ` (predicting: ${done} / ${total})` : '';
  $('train-status').textContent = `Training ${job.status}${step}`;
}

function finished(job) {
  const result = job.result || {};
  if (job.status === 'succeeded' && result.status === 'not_enough_data') {
    show('train-error', result.message || 'Not enough training labels yet.');
    $('train-status').textContent = '';
  } else if (job.status === 'succeeded') {
    $('train-status').textContent = `${result.status}: ${result.model}. Reloading…`;
    window.location.assign(window.location.pathname); // the first pages, with the new version on top
  } else {
    show('train-error', `The training ${job.status}${job.error ? `: ${job.error}` : ''}.`);
  }
}

async function train(event) {
  event.preventDefault();
  const button = $('train-now');
  show('train-error', '');
  button.disabled = true;
  try {
    const { data } = await api('POST', `${base}/models`, { body: { question: $('train-question').value } });
    progressOf(data);
    await followJob(data.id, (job) => {
      progressOf(job);
      if (['succeeded', 'failed', 'canceled'].includes(job.status)) finished(job);
    }, (error) => show('train-error', message(error)));
  } catch (error) {
    show('train-error', message(error));
  } finally {
    button.disabled = false;
  }
}

function curve(question, points) {
  const el = h('div', { class: 'dash-chart', role: 'img', 'aria-label': `Learning curve of ${question}` });
  $('curve-charts').append(h('h3', {}, question), el);
  const options = {
    width: Math.max(280, el.clientWidth || 600),
    height: 240,
    scales: { x: { time: false }, y: { range: [0, 1] } },
    axes: [{ label: 'training labels' }, { label: 'accuracy, ECE' }],
    series: [
      { label: 'training labels' },
      { label: 'held-out accuracy', stroke: '#2f6fdf', width: 2, points: { show: true, size: 6 } },
      { label: 'on verified labels', stroke: '#2a9d5c', width: 2, points: { show: true, size: 6 } },
      { label: 'ECE', stroke: '#d9822b', width: 2, dash: [6, 4], points: { show: true, size: 6 } },
    ],
  };
  const data = [
    points.map((p) => p.n),
    points.map((p) => p.accuracy),
    points.map((p) => p.verified_accuracy ?? null),
    points.map((p) => p.ece),
  ];
  return new uPlot(options, data, el);
}

// The two kinds of model the form starts: where their job is started, and what the model field is
const KINDS = {
  llm: { path: 'llm-labels', modelField: 'model', modelLabel: 'Model', placeholder: 'http://llm.internal:8000/v1' },
  server: { path: 'model-server-predictions', modelField: 'name', modelLabel: 'Name (optional)', placeholder: 'http://models.internal:9000' },
};
const kind = () => KINDS[$('llm-kind').value];

function showKind() {
  const chosen = kind();
  $('llm-model-label').textContent = chosen.modelLabel;
  $('llm-model').required = chosen.modelField === 'model';
  $('llm-base_url').placeholder = chosen.placeholder;
  $('llm-train-choice').hidden = chosen.modelField === 'model';
}

function llmBody() {
  const chosen = kind();
  const body = {
    question: $('llm-question').value,
    base_url: $('llm-base_url').value.trim(),
    include_gold: $('llm-include_gold').checked,
  };
  const model = $('llm-model').value.trim();
  if (model || chosen.modelField === 'model') body[chosen.modelField] = model;
  if (chosen.modelField === 'name') body.train = $('llm-train').checked;
  const key = $('llm-api_key').value;
  if (key) body.api_key = key;
  const limit = $('llm-limit').value.trim();
  if (limit) body.limit = /^\d+$/.test(limit) ? Number(limit) : limit; // the API names a bad one
  return body;
}

function llmFinished(job) {
  const result = job.result || {};
  if (job.status === 'succeeded') {
    $('llm-status').textContent = `Labeled: ${result.stored ?? 0} answers stored. Reloading…`;
    window.location.assign(window.location.pathname); // the runs table, with this run on top
  } else {
    show('llm-error', `The labeling ${job.status}${job.error ? `: ${job.error}` : ''}.`);
    $('llm-status').textContent = '';
  }
}

async function labelWithModel(event) {
  event.preventDefault();
  for (const el of document.querySelectorAll('#llm-form .field-error')) show(el.id, '');
  show('llm-error', '');
  const button = $('llm-start');
  button.disabled = true;
  try {
    const { data } = await api('POST', `${base}/${kind().path}`, { body: llmBody() });
    $('llm-api_key').value = ''; // sent once, sealed in the job: not kept in the page
    $('llm-status').textContent = 'Labeling queued';
    await followJob(data.id, (job) => {
      const { done, total } = job.progress;
      $('llm-status').textContent = `Labeling ${job.status}${total ? ` (${done} / ${total})` : ''}`;
      if (['succeeded', 'failed', 'canceled'].includes(job.status)) llmFinished(job);
    }, (error) => show('llm-error', message(error)));
  } catch (error) {
    showRefusal(error, 'llm-error', { name: 'model' }); // a model server's name is typed in the model field
  } finally {
    button.disabled = false;
  }
}

const llmForm = $('llm-form');
if (llmForm) {
  llmForm.addEventListener('submit', labelWithModel);
  $('llm-kind').addEventListener('change', showKind);
  showKind();
}
const form = $('train-form');
if (form) form.addEventListener('submit', train);
for (const [question, points] of Object.entries(config.curve || {})) curve(question, points);

// --- "Upload predictions": a JSON Lines file sent as one POST /projects/{id}/predictions ------------

const MAX_PREDICTIONS = 5000; // the API's most per request: one request keeps "store nothing" whole

/** The file's predictions with their line numbers, or the first line that is not a JSON object. */
function predictionLines(text) {
  const items = [];
  const lines = [];
  const rows = text.split(/\r?\n/);
  for (let index = 0; index < rows.length; index += 1) {
    const row = rows[index].trim();
    if (!row) continue;
    let item;
    try {
      item = JSON.parse(row);
    } catch {
      return { error: `line ${index + 1} is not JSON` };
    }
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return { error: `line ${index + 1} is not a JSON object` };
    items.push(item);
    lines.push(index + 1);
  }
  return { items, lines };
}

function showPredictionErrors(errors, lines) {
  const list = $('p-errors');
  list.replaceChildren(...errors.slice(0, 20).map((e) => h('li', {}, `line ${lines[e.index] ?? '?'}: ${e.field}: ${e.message}`)));
  list.hidden = errors.length === 0;
}

async function uploadPredictions(event) {
  event.preventDefault();
  for (const id of ['err-p-model', 'err-p-version', 'err-p-file']) show(id, '');
  showPredictionErrors([], []);
  $('p-status').textContent = '';
  const file = $('p-file').files[0];
  if (!file) {
    show('err-p-file', 'Choose a JSON Lines file of predictions.');
    return;
  }
  const parsed = predictionLines(await file.text());
  if (parsed.error) {
    show('err-p-file', `${parsed.error}: nothing was sent.`);
    return;
  }
  if (!parsed.items.length || parsed.items.length > MAX_PREDICTIONS) {
    show('err-p-file', parsed.items.length ? `${parsed.items.length} predictions: at most ${MAX_PREDICTIONS} a file here.` : 'The file holds no prediction.');
    return;
  }
  const body = {
    model: $('p-model').value.trim(),
    version: $('p-version').value.trim(),
    on_error: $('p-skip').checked ? 'skip' : 'reject',
    predictions: parsed.items,
  };
  $('p-start').disabled = true;
  try {
    const { data } = await api('POST', `${base}/predictions`, { body });
    $('p-status').textContent = `${data.received} predictions for ${data.model}: ${data.stored} stored (${data.responses_created} tasks), ${data.unchanged} unchanged, ${data.invalid} refused.`;
    showPredictionErrors(data.errors || [], parsed.lines);
  } catch (error) {
    const refused = (error.details && error.details.errors) || [];
    if (refused.length) {
      $('p-status').textContent = 'Nothing was stored: these predictions are refused.';
      showPredictionErrors(refused, parsed.lines);
    } else {
      showRefusal(error, 'err-p-file', { model: 'p-model', version: 'p-version' });
    }
  } finally {
    $('p-start').disabled = false;
  }
}

if ($('predictions-form')) $('predictions-form').addEventListener('submit', uploadPredictions);
