// The project dashboard: every figure comes from one endpoint (GET /projects/{id}/dashboard), asked
// again every few seconds so the page follows the work. Charts are uPlot (vendored, canvas-drawn, so
// the strict CSP holds); tables are built with DOM nodes (text only, never HTML from the server).
import uPlot from './vendor/uplot/dist/uPlot.esm.js';
import { api } from './api.js';
import { followJob, message, show } from './job-kit.js';
import { h } from './widget-kit.js';

const config = JSON.parse(document.getElementById('dashboard-config').textContent);
const $ = (id) => document.getElementById(id);
const base = `/projects/${encodeURIComponent(config.project_id)}`;
const ACCENT = '#2f6fdf';
const FILL = 'rgba(47, 111, 223, 0.35)';

const state = { interval: 'hour', cursor: null, next: null, timer: null, busy: false, again: false };
const charts = {};

const percent = (value) => (value === null || value === undefined ? '—' : `${(value * 100).toFixed(1)}%`);
const number = (value) => (value === null || value === undefined ? '—' : Number(value).toFixed(3));
const count = (value) => Number(value).toLocaleString();

// --- charts ----------------------------------------------------------------------------------------

function barChart(id, { time = false, xLabel, yLabel, xValues, xRange }) {
  const el = $(id);
  const options = {
    width: Math.max(280, el.clientWidth || 600),
    height: 220,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time, range: xRange || (time ? undefined : (u, min, max) => [min - 0.5, max + 0.5]) }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [
      { label: xLabel, ...(xValues ? { values: xValues } : {}) },
      { label: yLabel, values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? count(t) : '')) },
    ],
    series: [{}, { label: yLabel, stroke: ACCENT, fill: FILL, width: 1, points: { show: false }, paths: uPlot.paths.bars({ size: [0.8, 80] }) }],
  };
  return new uPlot(options, [[], []], el);
}

function setUpCharts() {
  charts.throughput = barChart('chart-throughput', { time: true, yLabel: 'responses' });
  charts.judgments = barChart('chart-judgments', {
    xLabel: 'judgments',
    yLabel: 'tasks',
    xValues: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (t >= 10 ? '10+' : String(t)) : '')),
  });
  charts.confidence = barChart('chart-confidence', {
    xLabel: 'confidence',
    yLabel: 'tasks',
    xValues: (u, ticks) => ticks.map((t) => `${Math.round(t * 100)}%`),
    xRange: () => [0, 1],
  });
  window.addEventListener('resize', () => {
    for (const [key, chart] of Object.entries(charts)) {
      chart.setSize({ width: Math.max(280, $(`chart-${key}`).clientWidth), height: 220 });
    }
  });
}

// --- figures ---------------------------------------------------------------------------------------

function showProgress(progress) {
  for (const [status, n] of Object.entries(progress)) {
    const el = document.querySelector(`[data-progress="${status}"]`);
    if (el) el.textContent = count(n);
  }
  const bar = $('progress-bar');
  bar.max = Math.max(1, progress.total - progress.gold - progress.canceled);
  bar.value = progress.completed;
  $('progress-share').textContent = progress.total
    ? `${percent(progress.completed / bar.max)} of the tasks to label are completed.`
    : 'No tasks yet: import some from the import page.';
}

function showCharts(figures) {
  const points = figures.throughput.points;
  charts.throughput.setData([points.map((p) => Date.parse(p.start) / 1000), points.map((p) => p.responses)]);
  const total = points.reduce((sum, p) => sum + p.responses, 0);
  const span = figures.throughput.interval === 'hour' ? 'the last 48 hours' : 'the last 30 days';
  $('throughput-summary').textContent = `${count(total)} responses in ${span}.`;
  $('throughput-summary').dataset.total = String(total);
  charts.judgments.setData([figures.judgments.map((b) => b.judgments), figures.judgments.map((b) => b.tasks)]);
  charts.confidence.setData([figures.confidence.map((b) => b.low + 0.05), figures.confidence.map((b) => b.tasks)]);
  const none = figures.without_confidence;
  $('confidence-none').textContent = none ? `${count(none)} ${none === 1 ? 'task has' : 'tasks have'} no result yet.` : '';
}

// a type's own agreement figures (boxes, spans, rankings, numbers, rubrics), by their API names
const MEASURE_NAMES = {
  mean_iou: 'mean IoU',
  f1_iou50: 'F1 of matched shapes',
  span_f1_exact: 'span F1, exact',
  span_f1_overlap: 'span F1, overlap',
  pairwise_agreement: 'pairwise agreement',
  kendall_tau: "Kendall's tau",
  first_shown_wins: 'first shown wins',
  first_shown_n: 'pairs shown',
  krippendorff_alpha_interval: 'alpha (interval)',
};

function measureName(key) {
  if (MEASURE_NAMES[key]) return MEASURE_NAMES[key];
  const [name, part] = key.split('.', 2); // a rubric's per-criterion figure: "krippendorff_alpha_ordinal.clarity"
  return part ? `${part}: ${(MEASURE_NAMES[name] || name).replaceAll('_', ' ')}` : key.replaceAll('_', ' ');
}

// "mean IoU 0.812 · F1 of matched shapes 0.770", or null when the type has no figures of its own
function measuresText(measures) {
  const entries = Object.entries(measures || {});
  if (!entries.length) return null;
  const known = entries.filter(([, value]) => value !== null && value !== undefined);
  if (!known.length) return 'no task with two workers yet';
  return known.map(([key, value]) => `${measureName(key)} ${number(value)}`).join(' · ');
}

function showAgreement(figures) {
  $('agreement-sample').textContent = `On the ${count(figures.sample_tasks)} most recent tasks with answers.`;
  $('agreement-rows').replaceChildren(
    ...figures.agreement.map((q) =>
      h(
        'tr',
        { title: q.reason || null },
        h('th', { scope: 'row' }, q.question),
        h('td', {}, q.type),
        h('td', {}, count(q.tasks)),
        h(
          'td',
          {},
          measuresText(q.measures) ?? (q.reason && q.percent_agreement === null ? q.reason : percent(q.percent_agreement)),
        ),
        h('td', {}, number(q.fleiss_kappa)),
        h('td', {}, number(q.krippendorff_alpha)),
      ),
    ),
  );
}

// a share with its 95% interval and how many answers it rests on: "91.2% (85.0%–95.1%) of 120"
function shareOf(share, interval, answers) {
  const [low, high] = interval || [null, null];
  return `${percent(share)} (${percent(low)}–${percent(high)}) of ${count(answers)}`;
}

function goldCell(worker) {
  if (!worker.gold_answers) return 'no gold answered';
  return shareOf(worker.gold_accuracy, worker.gold_interval, worker.gold_answers);
}

// leave one out: each answer against the other workers' (an estimate, not gold; docs/quality.md)
function estimatedCell(worker) {
  if (!worker.scored_answers) return '—';
  return shareOf(worker.estimated_accuracy, worker.accuracy_interval, worker.scored_answers);
}

// a model worker's auto-labeling (docs/models.md, "Auto-labeling and audits"); people label by hand
function autoLabelCell(worker) {
  if (worker.kind !== 'model') return '—';
  const audits = worker.audits ? ` (${count(worker.audits_agreed)} of ${count(worker.audits)} audits agreed)` : ' (no audits yet)';
  return `${count(worker.auto_labeled)} tasks${audits}`;
}

// what the project's fitted worker models measured (docs/quality.md): right so often on a
// categorical question, so far off on a numeric one
function measuredCell(worker) {
  const entries = Object.entries(worker.measured || {});
  if (!entries.length) return '—';
  return entries
    .map(([key, m]) => (m.noise_sd !== undefined ? `${key} ±${m.noise_sd.toPrecision(2)}` : `${key} ${percent(m.accuracy)}`))
    .join(' · ');
}

function standingCell(worker) {
  const cell = h('td', {}, h('span', { class: `badge status-${worker.status || 'active'}`, title: worker.status_reason || null }, worker.status || 'active'));
  if (config.may_reinstate && (worker.status === 'paused' || worker.status === 'qualifying')) {
    const button = h('button', { type: 'button', class: 'btn btn-small', 'data-reinstate': worker.worker_id }, 'Reinstate');
    button.addEventListener('click', () => reinstate(worker, button));
    cell.append(' ', button);
  }
  return cell;
}

function showWorkers(workers) {
  const rows = workers.items.map((w) =>
    h(
      'tr',
      { 'data-worker': w.worker_id },
      h('th', { scope: 'row' }, w.name, w.kind === 'model' ? ' (model)' : ''),
      h('td', {}, count(w.responses)),
      h('td', {}, goldCell(w)),
      h('td', {}, percent(w.agreement_with_results)),
      h('td', { 'data-estimated': w.worker_id }, estimatedCell(w)),
      h('td', { 'data-measured': w.worker_id }, measuredCell(w)),
      h('td', {}, w.mean_duration_ms === null ? '—' : `${(w.mean_duration_ms / 1000).toFixed(1)} s`),
      h('td', { 'data-auto-label': w.worker_id }, autoLabelCell(w)),
      standingCell(w),
    ),
  );
  $('worker-rows').replaceChildren(...rows);
  $('workers-empty').hidden = rows.length > 0 || state.cursor !== null;
  state.next = workers.next_cursor;
  $('workers-next').hidden = !state.next;
  $('workers-first').hidden = state.cursor === null;
}

function showCost(cost) {
  $('cost-judgments').textContent = count(cost.judgments);
  $('cost-price').textContent = cost.price_per_judgment === null ? 'not set' : String(cost.price_per_judgment);
  $('cost-total').textContent = cost.total === null ? '—' : cost.total.toLocaleString(undefined, { maximumFractionDigits: 2 });
}

// --- quality models --------------------------------------------------------------------------------

function calibration(model) {
  const figure = model.temperature !== null ? `temperature ${model.temperature.toFixed(3)}` : `shared error sd ${Number(model.shared_sd.toPrecision(3))}`;
  return `${figure}, ${model.gold_tasks ? `on ${count(model.gold_tasks)} gold tasks` : 'from the answers alone'}`;
}

function showQualityModels(models) {
  $('quality-model-rows').replaceChildren(
    ...models.map((model) =>
      h(
        'tr',
        { 'data-model': model.key },
        h('th', { scope: 'row' }, model.key),
        h('td', {}, model.method),
        h('td', { class: 'num' }, String(model.version)),
        h('td', {}, new Date(model.fitted_at).toLocaleString()),
        h('td', { class: 'num' }, count(model.responses)),
        h('td', { class: 'num' }, count(model.workers)),
        h('td', { 'data-cell': 'calibration' }, calibration(model)),
      ),
    ),
  );
  $('quality-models-empty').hidden = models.length > 0;
  $('quality-models-no-gold').hidden = !models.some((model) => !model.gold_tasks);
}

async function refitNow(button) {
  button.disabled = true;
  show('refit-error', '');
  try {
    const { data: job } = await api('POST', `${base}/refit`);
    show('refit-status', `Refit job ${job.id} is ${job.status}.`);
    await followJob(
      job.id,
      (now) => {
        if (now.status === 'succeeded') {
          show('refit-status', `Refitted: ${count((now.result || {}).changed_answers || 0)} answers changed.`);
        } else {
          show('refit-status', `Refit job ${now.id} is ${now.status}${now.error ? `: ${now.error}` : '.'}`);
        }
      },
      (error) => show('refit-error', `The refit could not be followed: ${message(error)}`),
    );
    await refresh();
  } catch (error) {
    show('refit-error', `The refit could not be started: ${message(error)}`);
  } finally {
    button.disabled = false;
  }
}

// --- refresh ---------------------------------------------------------------------------------------

async function refresh() {
  if (state.busy) {
    state.again = true; // asked while a refresh runs (a button): run once more right after it
    return;
  }
  state.busy = true;
  clearTimeout(state.timer);
  const params = new URLSearchParams({ interval: state.interval });
  if (state.cursor) params.set('workers_cursor', state.cursor);
  try {
    const { data } = await api('GET', `${base}/dashboard?${params}`);
    showProgress(data.progress);
    showCharts(data);
    showAgreement(data);
    showWorkers(data.workers);
    showQualityModels(data.quality_models);
    showCost(data.cost);
    show('dash-error', '');
    $('dash-updated').textContent = `Updated ${new Date(data.generated_at).toLocaleTimeString()}; refreshes every ${config.refresh_seconds} s.`;
    document.body.dataset.dashboard = 'ready';
  } catch (error) {
    show('dash-error', `The figures could not be refreshed: ${message(error)}`);
  } finally {
    state.busy = false;
    state.timer = setTimeout(refresh, state.again ? 0 : config.refresh_seconds * 1000);
    state.again = false;
  }
}

function confirmDialog(title, text) {
  const dialog = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

async function reinstate(worker, button) {
  const ok = await confirmDialog(
    `Reinstate ${worker.name}?`,
    `${worker.name} may take tasks again with a fresh gold record (${worker.status_reason || 'paused by gold'}).`,
  );
  if (!ok) return;
  button.disabled = true;
  try {
    await api('POST', `${base}/workers/${encodeURIComponent(worker.worker_id)}/reinstate`);
    show('worker-error', '');
    await refresh();
  } catch (error) {
    show('worker-error', `${worker.name} could not be reinstated: ${message(error)}`);
    button.disabled = false;
  }
}

function wire() {
  for (const button of document.querySelectorAll('[data-interval]')) {
    button.addEventListener('click', () => {
      state.interval = button.dataset.interval;
      for (const other of document.querySelectorAll('[data-interval]')) {
        other.setAttribute('aria-pressed', String(other === button));
      }
      refresh();
    });
  }
  $('workers-next').addEventListener('click', () => {
    state.cursor = state.next;
    refresh();
  });
  $('workers-first').addEventListener('click', () => {
    state.cursor = null;
    refresh();
  });
  const refit = $('refit-now');
  if (refit) refit.addEventListener('click', () => refitNow(refit));
}

setUpCharts();
wire();
refresh();
