// What the pages that start a background job share (exports.js, import.js): a refusal in words, a
// message slot shown only when it has text, and following a job (GET /jobs/{id}) until it ends.
import { api, ApiError } from './api.js';

const POLL_MS = 1000;
const FINISHED = new Set(['succeeded', 'failed', 'canceled']);

/** Whether a job has ended (succeeded, failed or canceled): nothing more to follow or cancel. */
export const finished = (job) => FINISHED.has(job.status);

/** Cancel a job (POST /jobs/{id}/cancel); resolves to the job as it now is. */
export async function cancelJob(jobId) {
  const { data } = await api('POST', `/jobs/${encodeURIComponent(jobId)}/cancel`);
  return data;
}

/** An API refusal's own message; anything else (no answer) in words. */
export const message = (error) =>
  error instanceof ApiError ? error.message : `The server could not be reached (${error.message}).`;

/** Put ``text`` in the element ``id`` and show it (hide it when empty); false when there is none. */
export function show(id, text) {
  const el = document.getElementById(id);
  if (!el) return false;
  el.textContent = text || '';
  el.hidden = !text;
  return true;
}

/**
 * Show an API refusal next to the field it names (``err-<field>``; ``renamed`` maps a field to the
 * element that holds it), else in the form's message slot ``formErrorId``.
 */
export function showRefusal(error, formErrorId, renamed = {}) {
  const named = error instanceof ApiError && error.details && String(error.details.field || '').replace(/^body\./, '');
  const field = renamed[named] || named;
  if (!field || !show(`err-${field}`, error.message)) show(formErrorId, message(error));
}

/**
 * Call ``onUpdate(job)`` with the job as it is now, every second, until it has finished. A lost
 * connection or a server error is retried at the next tick; a refusal (4xx) goes to ``onRefused``.
 */
export async function followJob(jobId, onUpdate, onRefused) {
  for (;;) {
    try {
      const { data } = await api('GET', `/jobs/${encodeURIComponent(jobId)}`);
      onUpdate(data);
      if (finished(data)) return;
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) {
        onRefused(error);
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
