// `boxes`: labelled rectangles on an image field (object detection). See /static/shape-kit.js.
import { mountShapes } from '/static/shape-kit.js';

export function mount(root, question, ctx) {
  return mountShapes(root, question, ctx, 'rectangle');
}
