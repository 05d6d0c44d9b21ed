// The `boxes` and `polygons` widgets: labelled shapes drawn on the question's image field with
// Annotorious (vendored, see docs/ui.md): it draws, moves, resizes and edits the shapes; this module
// only turns its annotations into answers and back, and adds labels, zoom and the keyboard.
//
// Coordinates are the image's natural pixels (origin top-left), whatever the zoom: Annotorious draws
// in an SVG whose viewBox is the image's natural size, so a zoomed image scales the shapes with it.
import '/static/annotorious-env.js'; // first: Annotorious reads what it defines when it loads
import { createImageAnnotator } from '/static/vendor/annotorious/dist/annotorious.es.js';
import { imageSource, takeImage } from '/static/fields.js';
import { h, keyMatches, optionKey } from '/static/widget-kit.js';

const ZOOM_STEP = 1.5;
const MAX_ZOOM = 8; // times the natural size
const PAN_SHARE = 0.2; // an arrow key scrolls this share of the visible image

let stylesheet = null;

function loadStylesheet() {
  // a <link> to a vendored file: the page's Content-Security-Policy allows styles from 'self' only
  if (stylesheet) return;
  stylesheet = h('link', { rel: 'stylesheet', href: '/static/vendor/annotorious/dist/annotorious.css' });
  document.head.append(stylesheet);
}

const round = (value) => Math.round(value * 100) / 100;

function bounds(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return { minX: Math.min(...xs), minY: Math.min(...ys), maxX: Math.max(...xs), maxY: Math.max(...ys) };
}

/** An answer's shape as an Annotorious annotation (the label in a `tagging` body). */
function toAnnotation(shape, id) {
  let selector;
  if ('points' in shape) {
    const points = shape.points.map(([x, y]) => [x, y]);
    selector = { type: 'POLYGON', geometry: { points, bounds: bounds(points) } };
  } else {
    const { x, y, width: w, height: hh } = shape;
    selector = { type: 'RECTANGLE', geometry: { x, y, w, h: hh, bounds: { minX: x, minY: y, maxX: x + w, maxY: y + hh } } };
  }
  return { id, bodies: [tag(id, shape.label)], target: { annotation: id, selector } };
}

function tag(id, label) {
  return { id: `${id}-label`, annotation: id, purpose: 'tagging', value: label };
}

function labelOf(annotation) {
  const body = annotation.bodies.find((b) => b.purpose === 'tagging');
  return body ? body.value : null;
}

/** An Annotorious annotation as an answer's shape, in natural image pixels rounded to 1/100. */
function toShape(annotation) {
  const { type, geometry } = annotation.target.selector;
  const label = labelOf(annotation);
  if (type === 'POLYGON') return { label, points: geometry.points.map(([x, y]) => [round(x), round(y)]) };
  if (geometry.rot) {
    // a rotated rectangle is answered by its bounding box: the answer format has no angle
    const b = geometry.bounds;
    return { label, x: round(b.minX), y: round(b.minY), width: round(b.maxX - b.minX), height: round(b.maxY - b.minY) };
  }
  return { label, x: round(geometry.x), y: round(geometry.y), width: round(geometry.w), height: round(geometry.h) };
}

/** A shapes answer in words for the reviewer: "Car: box 12,30 80x40; Person: polygon 3 points 10,10 40,10 25,30". */
export function describeShapes(value, question) {
  if (!Array.isArray(value)) return JSON.stringify(value);
  if (!value.length) return 'none drawn';
  const names = new Map(question.labels.map((option) => [option.value, option.label || option.value]));
  const n = (x) => String(round(x));
  return value
    .map((shape) => {
      const name = names.get(shape.label) || shape.label;
      if (Array.isArray(shape.points)) {
        return `${name}: polygon ${shape.points.length} points ${shape.points.map(([x, y]) => `${n(x)},${n(y)}`).join(' ')}`;
      }
      return `${name}: box ${n(shape.x)},${n(shape.y)} ${n(shape.width)}x${n(shape.height)}`;
    })
    .join('; ');
}

const SVG = 'http://www.w3.org/2000/svg';
const COLOURS = 8; // the label colours of app.css (.span-c0 ... .span-c7), shared with the spans widget

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** A shapes answer drawn read-only over a thumbnail of its image (the reviewer's view): an SVG whose
 * viewBox is the image's natural size, so the shapes sit where they are in pixels at any width.
 * Attributes, not styles: the page's policy allows no inline styles. */
export function previewShapes(value, question, data) {
  const src = imageSource(data ? data[question.field] : null);
  if (!src || !Array.isArray(value)) return null;
  const colour = new Map(question.labels.map((option, index) => [option.value, `span-c${index % COLOURS}`]));
  const names = new Map(question.labels.map((option) => [option.value, option.label || option.value]));
  const layer = svg('svg', { class: 'shape-preview-layer', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  value.forEach((shape, index) => {
    const attributes = { class: `shape-preview-shape ${colour.get(shape.label) || 'span-c0'}`, 'data-shape': index };
    const node = Array.isArray(shape.points)
      ? svg('polygon', { ...attributes, points: shape.points.map(([x, y]) => `${x},${y}`).join(' ') })
      : svg('rect', { ...attributes, x: shape.x, y: shape.y, width: shape.width, height: shape.height });
    const title = svg('title', {});
    title.textContent = names.get(shape.label) || shape.label;
    node.append(title);
    layer.append(node);
  });
  const image = h('img', { src, alt: `${question.field} with the ${question.name} drawn`, referrerpolicy: 'no-referrer', decoding: 'async' });
  const frame = h('div', { class: 'shape-preview', 'data-question': question.name }, image, layer);
  const size = () => {
    layer.setAttribute('viewBox', `0 0 ${image.naturalWidth} ${image.naturalHeight}`);
    frame.dataset.ready = 'true';
  };
  if (image.complete && image.naturalWidth) size();
  else image.addEventListener('load', size, { once: true });
  return frame;
}

export function mountShapes(root, question, ctx, tool) {
  loadStylesheet();
  const labels = question.labels;
  const keys = labels.map(optionKey);
  const noun = tool === 'polygon' ? 'polygon' : 'box';
  const nouns = tool === 'polygon' ? 'polygons' : 'boxes';
  let current = 0; // the label the next shape gets
  let annotator = null;
  let image = null;
  let scale = null; // null: fit the image to the width of the stage
  let serial = 0;
  let pending = []; // the shapes to show once the image has loaded (a restored draft)
  let drawing = false; // an outline is half drawn

  const radios = [];
  const picker = h('div', { class: 'options shape-labels', role: 'radiogroup', 'aria-label': `Label of the next ${noun}` });
  labels.forEach((option, index) => {
    const input = h('input', { type: 'radio', name: `${ctx.id}-label`, value: option.value });
    input.addEventListener('change', () => pick(index));
    radios.push(input);
    picker.append(
      h(
        'label',
        { class: 'option' },
        input,
        h('span', { class: 'option-text', text: option.label || option.value }),
        keys[index] ? h('kbd', { text: keys[index], 'aria-hidden': 'true' }) : null,
      ),
    );
  });
  const button = (text, title, action, attributes = {}) => {
    const node = h('button', { type: 'button', class: 'btn btn-small', title, ...attributes }, text);
    node.addEventListener('click', action);
    return node;
  };
  const tools = h(
    'div',
    { class: 'shape-tools' },
    button('−', 'Zoom out (-)', () => zoom(1 / ZOOM_STEP), { 'data-action': 'zoom-out', 'aria-label': 'Zoom out' }),
    button('Fit', 'Fit the image (0)', () => zoom(null), { 'data-action': 'zoom-fit' }),
    button('+', 'Zoom in (+)', () => zoom(ZOOM_STEP), { 'data-action': 'zoom-in', 'aria-label': 'Zoom in' }),
    h('span', { class: 'muted small shape-hint', text: tool === 'polygon'
      ? 'Click the points of an outline; click the first point again (or double-click) to close it.'
      : 'Drag on the image to draw a box; drag a box or its handles to move or resize it.' }),
  );
  const stage = h('div', { class: 'shape-stage', 'data-field': question.field });
  const list = h('ol', { class: 'shape-list', 'aria-label': `${nouns} drawn` });
  const count = h('p', { class: 'muted small shape-count', 'aria-live': 'polite' });
  root.append(picker, tools, stage, count, list);

  function annotations() {
    return annotator ? annotator.getAnnotations() : [];
  }

  /** Give shapes drawn since the last look the current label. Annotorious reports a new shape a
   * moment later (a timer), so reading the answer must not wait for that report. */
  function labelNew() {
    for (const annotation of annotations()) {
      if (labelOf(annotation) === null) {
        annotator.updateAnnotation({ ...annotation, bodies: [tag(annotation.id, labels[current].value)] });
      }
    }
  }

  function selectedId() {
    const selected = annotator ? annotator.getSelected() : [];
    return selected.length ? selected[0].id : null;
  }

  function pick(index) {
    current = index;
    radios[index].checked = true;
    const id = selectedId();
    if (id) relabel(annotator.getAnnotationById(id), labels[index].value); // a key on a selected shape relabels it
  }

  function relabel(annotation, label) {
    if (!annotation || labelOf(annotation) === label) return;
    annotator.updateAnnotation({ ...annotation, bodies: [tag(annotation.id, label)] });
    update();
  }

  function update(notify = true) {
    const shapes = annotations();
    const selected = selectedId();
    count.textContent = `${shapes.length} ${shapes.length === 1 ? noun : nouns}`;
    list.replaceChildren(
      ...shapes.map((annotation, index) => {
        const item = h(
          'li',
          { class: annotation.id === selected ? 'shape-item selected' : 'shape-item', 'data-shape': annotation.id },
          button(`${index + 1}. ${labelText(labelOf(annotation))}`, 'Select', () => select(annotation.id), { class: 'btn btn-small btn-quiet' }),
          button('×', 'Delete (Del)', () => remove(annotation.id), { 'aria-label': `Delete ${noun} ${index + 1}`, 'data-action': 'delete' }),
        );
        return item;
      }),
    );
    if (notify) ctx.changed();
  }

  function labelText(value) {
    const option = labels.find((o) => o.value === value);
    return option ? option.label || option.value : String(value);
  }

  function select(id) {
    if (!annotator) return;
    annotator.setSelected(id);
    update();
  }

  function remove(id) {
    if (!annotator || !id || !annotator.getAnnotationById(id)) return false;
    annotator.removeAnnotation(id);
    update();
    return true;
  }

  function cycle(step) {
    const shapes = annotations();
    if (!shapes.length) return;
    const at = shapes.findIndex((a) => a.id === selectedId());
    const next = at < 0 ? (step > 0 ? 0 : shapes.length - 1) : (at + step + shapes.length) % shapes.length;
    select(shapes[next].id);
  }

  function fitScale() {
    if (!image || !image.naturalWidth) return 1;
    return Math.min(1, stage.clientWidth / image.naturalWidth);
  }

  function zoom(factor) {
    if (!image) return;
    scale = factor === null ? null : Math.min(MAX_ZOOM, Math.max(fitScale(), (scale ?? fitScale()) * factor));
    applyZoom();
  }

  function applyZoom() {
    if (!image || !image.naturalWidth) return;
    // CSSOM, not a style attribute: the page's policy allows no inline styles
    image.style.width = `${Math.round(image.naturalWidth * (scale ?? fitScale()))}px`;
    stage.dataset.zoom = String(scale ?? fitScale());
  }

  function pan(dx, dy) {
    stage.scrollBy(dx * stage.clientWidth * PAN_SHARE, dy * stage.clientHeight * PAN_SHARE);
  }

  function open(data, value) {
    if (annotator) annotator.destroy();
    annotator = null;
    scale = null;
    pending = Array.isArray(value) ? value : [];
    const src = imageSource(data ? data[question.field] : null);
    if (!src) {
      stage.replaceChildren(h('p', { class: 'muted', text: 'The image reference is not valid.' }));
      image = null;
      return;
    }
    const shown = takeImage(src) || h('img', { src, decoding: 'async' });
    image = shown;
    image.className = 'shape-image';
    image.alt = question.field;
    image.referrerPolicy = 'no-referrer';
    image.draggable = false;
    stage.replaceChildren(image);
    // Annotorious takes the image's natural size when it starts, and sizes its handles (and the
    // "close the outline" distance) from it: start it only once the image has loaded
    if (image.complete && image.naturalWidth) attach();
    else image.addEventListener('load', () => image === shown && attach(), { once: true });
  }

  function attach() {
    applyZoom();
    // boxes are dragged out; an outline is clicked point by point (in Annotorious' drag mode its
    // first edge would have to be dragged)
    const drawingMode = tool === 'polygon' ? 'click' : 'drag';
    annotator = createImageAnnotator(image, { drawingEnabled: true, drawingMode, theme: 'light' });
    annotator.setDrawingTool(tool);
    if (pending.length) {
      annotator.setAnnotations(pending.map((shape) => toAnnotation(shape, `draft-${(serial += 1)}`)), true);
    }
    pending = [];
    annotator.on('createAnnotation', () => {
      drawing = false;
      labelNew();
      update();
    });
    annotator.on('deleteAnnotation', () => update());
    // every change of a shape saves the draft at once: Annotorious' own updateAnnotation event
    // comes only when a moved or resized shape is unselected, and a reload before that lost it
    annotator.state.store.observe(() => queueMicrotask(() => update()));
    annotator.on('selectionChanged', () => {
      const id = selectedId();
      for (const item of list.children) item.classList.toggle('selected', item.dataset.shape === id);
    });
    stage.dataset.ready = 'true';
    update(false);
  }

  function onKey(event) {
    const index = keys.findIndex((key) => keyMatches(event, key));
    if (index >= 0) {
      pick(index);
      return true;
    }
    switch (event.key) {
      case 'Delete':
      case 'Backspace':
        return remove(selectedId());
      case ']':
        cycle(1);
        return true;
      case '[':
        cycle(-1);
        return true;
      case '+':
      case '=':
        zoom(ZOOM_STEP);
        return true;
      case '-':
        zoom(1 / ZOOM_STEP);
        return true;
      case '0':
        zoom(null);
        return true;
      case 'ArrowLeft':
        pan(-1, 0);
        return true;
      case 'ArrowRight':
        pan(1, 0);
        return true;
      case 'ArrowUp':
        pan(0, -1);
        return true;
      case 'ArrowDown':
        pan(0, 1);
        return true;
      default:
        return false;
    }
  }

  // Esc while a shape is selected (or half drawn) ends that, not the task: handled before the
  // workbench's own keys (capture), which skip an event whose default is prevented
  document.addEventListener(
    'keydown',
    (event) => {
      if (event.key !== 'Escape' || !annotator || !root.isConnected) return;
      if (!ctx.fieldset.contains(document.activeElement) && document.activeElement !== document.body) return;
      if (drawing) {
        event.preventDefault();
        drawing = false;
        annotator.cancelDrawing();
      } else if (selectedId()) {
        event.preventDefault();
        annotator.cancelSelected();
        update();
      }
    },
    true,
  );
  // an outline is drawn click by click: from its first click until it is closed, Esc drops it
  stage.addEventListener('pointerdown', () => {
    drawing = tool === 'polygon' && !selectedId();
  });

  // The task form is hidden between tasks (and after the last one): a selected shape's editor then
  // sizes its handles for a zero-width image (Infinity). Unselect first; this observer is made
  // before any annotator's, so it runs before Annotorious sees the new size.
  new ResizeObserver(() => {
    if (annotator && stage.clientWidth === 0 && selectedId()) annotator.cancelSelected();
  }).observe(stage);

  pick(0);
  return {
    get: () => {
      if (!annotator) return pending.map((shape) => ({ ...shape })); // a draft on an image still loading
      labelNew();
      return annotations().map(toShape);
    },
    set: (value, data) => {
      drawing = false;
      delete stage.dataset.ready;
      open(data, value);
      pick(0);
      update(false); // showing a task is no change: no draft
    },
    key: onKey,
    focus: () => ctx.fieldset.focus(),
    ownsField: question.field,
  };
}
