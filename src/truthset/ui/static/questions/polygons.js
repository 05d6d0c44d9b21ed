// `polygons`: labelled outlines on an image field (segmentation). See /static/shape-kit.js.
import { describeShapes, mountShapes, previewShapes } from '/static/shape-kit.js';

export const describe = describeShapes; // the reviewer's words for an answer
export const preview = previewShapes; // and its picture: the shapes over a thumbnail

export function mount(root, question, ctx) {
  return mountShapes(root, question, ctx, 'polygon');
}
