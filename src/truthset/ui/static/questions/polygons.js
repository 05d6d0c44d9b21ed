// `polygons`: labelled outlines on an image field (segmentation). See /static/shape-kit.js.
import { describeShapes, mountShapes } from '/static/shape-kit.js';

export const describe = describeShapes; // the reviewer's words for an answer

export function mount(root, question, ctx) {
  return mountShapes(root, question, ctx, 'polygon');
}
