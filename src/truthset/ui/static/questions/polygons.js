// `polygons`: labelled outlines on an image field (segmentation). See /static/shape-kit.js.
import { mountShapes } from '/static/shape-kit.js';

export function mount(root, question, ctx) {
  return mountShapes(root, question, ctx, 'polygon');
}
