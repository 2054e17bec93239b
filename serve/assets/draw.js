// Drawing a served answer over its image on a canvas, with the conventions of drawing.json (the
// same file serve/examples/annotate.rs draws the pipeline's picture with): one palette colour
// per class (detection class k and mask class k + 1 share palette[k]), translucent masks,
// outlined boxes, dots for landmarks and labels on a white band.

/** The palette colour for `index`, as [r, g, b]. */
export function colour(style, index) {
  return style.palette[index % style.palette.length];
}

export function css([r, g, b]) {
  return `rgb(${r}, ${g}, ${b})`;
}

/** The scale that shows an image of `width`×`height` at about `side` pixels: whole numbers
 * when enlarging (so small images stay sharp pixels), a fraction when shrinking. */
export function fitScale(width, height, side) {
  const s = side / Math.max(width, height);
  return s >= 1 ? Math.floor(s) : s;
}

/** Sizes the canvas for `image` at `scale` and draws it. */
export function drawImage(canvas, image, scale) {
  canvas.width = Math.round(image.naturalWidth * scale);
  canvas.height = Math.round(image.naturalHeight * scale);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = scale < 1;
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  return ctx;
}

/** Reads a mask PNG (one class index per pixel) into { width, height, classes: Uint8Array }. */
export function readMask(maskImage) {
  const { naturalWidth: width, naturalHeight: height } = maskImage;
  const scratch = document.createElement('canvas');
  scratch.width = width;
  scratch.height = height;
  const ctx = scratch.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(maskImage, 0, 0);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const classes = new Uint8Array(width * height);
  for (let i = 0; i < classes.length; i++) classes[i] = rgba[4 * i];
  return { width, height, classes };
}

/** Blends each non-background class's colour over the image at the style's opacity. */
export function drawMask(ctx, mask, style) {
  const overlay = new ImageData(mask.width, mask.height);
  const alpha = Math.round(255 * style.mask_opacity);
  mask.classes.forEach((c, i) => {
    if (c === 0) return;
    const [r, g, b] = colour(style, c - 1);
    overlay.data.set([r, g, b, alpha], 4 * i);
  });
  const layer = document.createElement('canvas');
  layer.width = mask.width;
  layer.height = mask.height;
  layer.getContext('2d').putImageData(overlay, 0, 0);
  ctx.save();
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(layer, 0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.restore();
}

/** The class ids a mask contains, background (0) left out. */
export function maskClasses(mask) {
  const seen = new Set(mask.classes);
  seen.delete(0);
  return [...seen].sort((a, b) => a - b);
}

/** Text on a white band, its top-left corner at (x, y), kept inside the canvas. */
export function label(ctx, x, y, text, rgb, style) {
  ctx.save();
  ctx.font = '12px monospace';
  const width = ctx.measureText(text).width + 4;
  const height = 14;
  x = Math.max(0, Math.min(x, ctx.canvas.width - width));
  y = Math.max(0, Math.min(y, ctx.canvas.height - height));
  ctx.fillStyle = css(style.label_background);
  ctx.fillRect(x, y, width, height);
  ctx.fillStyle = css(rgb);
  ctx.textBaseline = 'top';
  ctx.fillText(text, x + 2, y + 1);
  ctx.restore();
}

/** Outlines each detection in its class colour, labelled with class and score; the lowest score
 * is drawn first, so the best box's label ends on top. */
export function drawBoxes(ctx, detections, scale, style) {
  const line = style.box_line_width;
  const ordered = [...detections].sort((a, b) => a.score - b.score);
  for (const d of ordered) {
    const [x, y, w, h] = d.bbox.map((v) => v * scale);
    const rgb = colour(style, d.class_id);
    ctx.fillStyle = css(rgb);
    // Four filled bands, inside the box, as annotate.rs draws them.
    ctx.fillRect(x, y, w, line);
    ctx.fillRect(x, y + h - line, w, line);
    ctx.fillRect(x, y, line, h);
    ctx.fillRect(x + w - line, y, line, h);
    label(ctx, x, y - 14, `${d.class_name} ${d.score.toFixed(2)}`, rgb, style);
  }
}

/** A dot in landmark i's colour at each point, with its name beside it. */
export function drawLandmarks(ctx, points, scale, style) {
  points.forEach((p, i) => {
    const rgb = colour(style, i);
    const [x, y] = [p.x * scale, p.y * scale];
    ctx.fillStyle = css(rgb);
    ctx.beginPath();
    ctx.arc(x, y, style.landmark_radius, 0, 2 * Math.PI);
    ctx.fill();
    label(ctx, x + 6, y - 7, p.name, rgb, style);
  });
}
