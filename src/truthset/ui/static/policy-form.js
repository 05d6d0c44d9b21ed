// The quality policy as a form, kept in step with its JSON (project editor).
//
// The server describes the controls from the policy's JSON schema (ui/_policy_form.py): numbers
// with their bounds, switches, choices, and nested groups such as gold and review, a group that may
// be null being "off" until ticked. A control writes its value into the JSON (which stays the one
// thing saved and checked); typing in the JSON moves the controls. An empty number box is null:
// the setting is not set, and the server's default applies.
import { h } from './widget-kit.js';

/**
 * Mount the form in ``container``. ``read()`` returns the policy the JSON holds (or throws when the
 * JSON does not parse), ``write(policy)`` replaces it. Returns ``refresh()``, to call after the JSON
 * was edited by hand.
 */
export function mountPolicyForm(container, description, { read, write }) {
  const inputs = [];
  const build = (control) => {
    const node = control.kind === 'group' ? group(control, build) : scalar(control);
    return node;
  };
  container.replaceChildren(...description.controls.map(build));
  if (description.json_only.length) {
    container.append(
      h('p', { class: 'muted' }, `Edit ${description.json_only.map((name) => `“${name}”`).join(' and ')} in the JSON below.`),
    );
  }
  for (const input of container.querySelectorAll('[data-path]')) inputs.push(input);

  container.addEventListener('change', (event) => {
    const input = event.target.closest('[data-path]');
    if (!input) return;
    let policy;
    try {
      policy = read();
    } catch {
      return; // the JSON is being edited and does not parse: its own error says so
    }
    spreadShorthands(policy, description.shorthands);
    setPath(policy, JSON.parse(input.dataset.path), valueOf(input));
    write(policy);
    refresh();
  });

  function refresh() {
    let policy;
    try {
      policy = read();
    } catch {
      return;
    }
    spreadShorthands(policy, description.shorthands);
    for (const input of inputs) show(input, getPath(policy, JSON.parse(input.dataset.path)));
    for (const fieldset of container.querySelectorAll('fieldset[data-toggle-for]')) {
      fieldset.disabled = getPath(policy, JSON.parse(fieldset.dataset.toggleFor)) == null;
    }
  }

  refresh();
  return refresh;
}

function scalar(control) {
  const id = `qp-${control.path.join('-')}`;
  const helpId = `${id}-help`;
  const path = JSON.stringify(control.path);
  const help = control.help ? h('span', { class: 'hint muted', id: helpId }, control.help) : null;
  if (control.kind === 'boolean') {
    return h(
      'div',
      { class: 'policy-control' },
      h('label', { class: 'check' }, h('input', { id, type: 'checkbox', 'data-path': path, 'data-kind': 'boolean', 'aria-describedby': help && helpId }), ` ${control.label}`),
      help,
    );
  }
  let input;
  if (control.kind === 'choice') {
    input = h('select', { id, 'data-path': path, 'data-kind': 'choice', 'aria-describedby': help && helpId });
    if (control.nullable) input.append(h('option', { value: '' }, '(not set)'));
    for (const choice of control.choices) input.append(h('option', { value: choice }, choice));
  } else {
    input = h('input', {
      id,
      type: 'number',
      inputmode: control.kind === 'integer' ? 'numeric' : 'decimal',
      step: control.kind === 'integer' ? '1' : 'any',
      min: control.minimum ?? control.exclusiveMinimum,
      max: control.maximum ?? control.exclusiveMaximum,
      placeholder: control.nullable ? 'not set' : null,
      'data-path': path,
      'data-kind': control.kind,
      'aria-describedby': help && helpId,
    });
  }
  return h('div', { class: 'policy-control' }, h('label', { for: id }, control.label), input, help);
}

function group(control, build) {
  const path = JSON.stringify(control.path);
  const children = control.children.map(build);
  const help = control.help ? h('p', { class: 'muted' }, control.help) : null;
  if (!control.nullable) {
    return h('fieldset', { class: 'policy-group' }, h('legend', {}, control.label), help, h('div', { class: 'policy-group-body' }, ...children));
  }
  // a group that may be null is off until ticked; ticking starts it from its defaults
  const id = `qp-${control.path.join('-')}-on`;
  const toggle = h('input', { id, type: 'checkbox', 'data-path': path, 'data-kind': 'group', 'data-default': JSON.stringify(control.default) });
  const inner = h('fieldset', { class: 'policy-group-body', 'data-toggle-for': path }, ...children);
  return h(
    'fieldset',
    { class: 'policy-group' },
    h('legend', {}, h('label', { class: 'check' }, toggle, ` ${control.label}`)),
    help,
    inner,
  );
}

function valueOf(input) {
  switch (input.dataset.kind) {
    case 'boolean':
      return input.checked;
    case 'group':
      return input.checked ? JSON.parse(input.dataset.default) : null;
    case 'choice':
      return input.value === '' ? null : input.value;
    default: {
      if (input.value.trim() === '') return null;
      const number = Number(input.value);
      // a value the box cannot hold goes into the JSON as typed, so the server's check names it
      return Number.isFinite(number) ? number : input.value;
    }
  }
}

function show(input, value) {
  if (document.activeElement === input && input.type === 'number') return; // never fight the typist
  switch (input.dataset.kind) {
    case 'boolean':
    case 'group':
      input.checked = value !== null && value !== undefined && value !== false;
      break;
    default:
      input.value = value === null || value === undefined ? '' : String(value);
  }
}

/** ``{"overlap": 3}`` -> ``{"min_overlap": 3, "max_overlap": 3}``: the form edits the long form. */
function spreadShorthands(policy, shorthands) {
  for (const [name, targets] of Object.entries(shorthands)) {
    if (policy[name] === null || policy[name] === undefined) continue;
    for (const target of targets) if (policy[target] === null || policy[target] === undefined) policy[target] = policy[name];
    delete policy[name];
  }
}

function getPath(object, path) {
  let node = object;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = node[key];
  }
  return node;
}

function setPath(object, path, value) {
  let node = object;
  for (const key of path.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== 'object') node[key] = {};
    node = node[key];
  }
  node[path[path.length - 1]] = value;
}
