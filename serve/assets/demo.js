// The demo page: lists the served models (from /v2 and each model's metadata), sends the chosen
// image to the model's task route (the metadata's `route`) and draws the answer over the image
// (draw.js); a task it has no drawing for shows its answer as JSON.

import * as draw from '/ui/draw.js';
import { element } from '/ui/dom.js';

const SAMPLES = { landmarks: '/ui/samples/face.png' };
const SCENE = '/ui/samples/scene.png';
/** About how many pixels the longer side of the drawn image takes. */
const SIDE = 400;

const $ = (id) => document.getElementById(id);
const state = { style: null, device: '', models: new Map(), shown: null };

async function getJson(url) {
  const response = await fetch(url);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body?.error ?? `${url}: HTTP ${response.status}`);
  }
  return body;
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
}

function clearResult() {
  state.shown = null;
  $('error').hidden = true;
  $('status').textContent = '';
  $('details').replaceChildren();
  const canvas = $('canvas');
  canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
  canvas.setAttribute('aria-label', 'No image yet');
}

function selected() {
  return state.models.get($('model').value);
}

function onModelChange() {
  const model = selected();
  if (!model) return;
  const { task } = model;
  $('model-task').textContent = `Task: ${task.kind}`;
  const detection = task.kind === 'detection';
  $('threshold-row').hidden = !detection;
  if (detection) setThreshold(task.score_threshold);
  clearResult();
}

function setThreshold(value) {
  $('threshold').value = value;
  $('threshold-value').textContent = Number(value).toFixed(2);
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error('the browser cannot display this image'));
    image.src = src;
  });
}

async function submit(blob, what) {
  const model = selected();
  if (!model) return;
  clearResult();
  if (!model.route) {
    showError(`No task route serves ${model.task.kind} models; use /v2/models/${model.name}/infer`);
    return;
  }
  $('status').textContent = `Sending ${what} to ${model.name}…`;
  const params = new URLSearchParams({ model: model.name });
  // Every peak comes back; the slider filters them here, without another request.
  if (model.task.kind === 'detection') params.set('score_threshold', '0');
  const started = performance.now();
  let response;
  let body;
  try {
    response = await fetch(`${model.route}?${params}`, {
      method: 'POST',
      headers: { 'Content-Type': blob.type || 'application/octet-stream' },
      body: blob,
    });
    body = await response.json().catch(() => null);
  } catch (e) {
    $('status').textContent = '';
    showError(`The request failed: ${e.message}`);
    return;
  }
  const ms = performance.now() - started;
  if (!response.ok) {
    $('status').textContent = `${model.name} answered HTTP ${response.status} in ${ms.toFixed(0)} ms`;
    showError(body?.error ?? `HTTP ${response.status}`);
    return;
  }
  if (!body) {
    showError(`${model.name} answered HTTP ${response.status}, but not with JSON`);
    return;
  }
  const url = URL.createObjectURL(blob);
  try {
    const image = await loadImage(url);
    const mask = body.mask ? draw.readMask(await loadImage(`data:image/png;base64,${body.mask.data}`)) : null;
    state.shown = { model, image, answer: body, mask };
  } catch (e) {
    showError(`The answer came, but ${e.message}`);
    return;
  } finally {
    URL.revokeObjectURL(url);
  }
  $('status').textContent = `${model.task.kind} by ${model.name}: ${ms.toFixed(0)} ms round trip, on ${state.device}`;
  render();
}

/** Draws state.shown: the image, then the answer over it; lists the answer beside it. */
function render() {
  const { model, image, answer, mask } = state.shown;
  const canvas = $('canvas');
  const scale = draw.fitScale(image.naturalWidth, image.naturalHeight, SIDE);
  const ctx = draw.drawImage(canvas, image, scale);
  const details = $('details');
  details.replaceChildren();
  const size = `${image.naturalWidth}×${image.naturalHeight}`;
  let summary;
  switch (model.task.kind) {
    case 'detection': {
      const threshold = Number($('threshold').value);
      const kept = answer.detections.filter((d) => d.score >= threshold);
      draw.drawBoxes(ctx, kept, scale, state.style);
      details.append(detectionTable(kept, answer.detections.length, threshold));
      summary = `${kept.length} detections: ${kept.map((d) => `${d.class_name} ${d.score.toFixed(2)}`).join(', ')}`;
      break;
    }
    case 'segmentation': {
      draw.drawMask(ctx, mask, state.style);
      const present = draw.maskClasses(mask).map((c) => ({ c, name: answer.classes[c] }));
      details.append(legend(present));
      summary = `segmentation mask with ${present.map((p) => p.name).join(', ') || 'background only'}`;
      break;
    }
    case 'landmarks': {
      draw.drawLandmarks(ctx, answer.points, scale, state.style);
      details.append(landmarkList(answer.points));
      summary = `${answer.points.length} landmarks: ${answer.points.map((p) => p.name).join(', ')}`;
      break;
    }
    case 'classification': {
      details.append(topBars(answer.top));
      summary = `classified as ${answer.top[0]?.class_name}`;
      break;
    }
    case 'embedding': {
      details.append(embeddingFacts(answer.embedding));
      summary = `a ${answer.dim}-dimensional embedding`;
      break;
    }
    default: {
      // A task this page has no drawing for: its answer, as the route returned it.
      const json = element('pre', JSON.stringify(answer, null, 2));
      json.id = 'answer';
      details.append(json);
      summary = `a ${model.task.kind} answer, listed beside it`;
    }
  }
  canvas.setAttribute('aria-label', `The ${size} image with ${summary}`);
}

function swatch(rgb) {
  const s = element('span', undefined, 'swatch');
  s.style.background = draw.css(rgb);
  s.setAttribute('aria-hidden', 'true');
  return s;
}

function detectionTable(kept, total, threshold) {
  const table = element('table');
  table.id = 'detections';
  table.append(element('caption', `${kept.length} of ${total} detections score at least ${threshold.toFixed(2)}`));
  const head = table.createTHead().insertRow();
  for (const h of ['class', 'score', 'box (x, y, w, h)']) head.append(element('th', h));
  const body = table.createTBody();
  for (const d of [...kept].sort((a, b) => b.score - a.score)) {
    const row = body.insertRow();
    const name = row.insertCell();
    name.append(swatch(draw.colour(state.style, d.class_id)), d.class_name);
    row.insertCell().textContent = d.score.toFixed(3);
    row.insertCell().textContent = d.bbox.map((v) => v.toFixed(1)).join(', ');
  }
  return table;
}

function legend(present) {
  const list = element('ul', undefined, 'legend');
  list.id = 'legend';
  list.setAttribute('aria-label', 'Mask classes');
  for (const { c, name } of present) {
    const item = element('li');
    item.append(swatch(draw.colour(state.style, c - 1)), name);
    list.append(item);
  }
  if (!present.length) list.append(element('li', 'background only'));
  return list;
}

function landmarkList(points) {
  const list = element('ol', undefined, 'legend');
  list.id = 'landmarks';
  list.setAttribute('aria-label', 'Landmarks');
  points.forEach((p, i) => {
    const item = element('li');
    item.append(swatch(draw.colour(state.style, i)), `${p.name} (${p.x.toFixed(1)}, ${p.y.toFixed(1)})`);
    list.append(item);
  });
  return list;
}

function topBars(top) {
  const list = element('ol', undefined, 'bars');
  list.id = 'classes';
  list.setAttribute('aria-label', 'Top classes');
  for (const t of top) {
    const item = element('li');
    const bar = element('span', undefined, 'bar');
    bar.style.width = `${(100 * t.score).toFixed(1)}%`;
    item.append(element('span', `${t.class_name} ${(100 * t.score).toFixed(1)}%`, 'bar-label'), bar);
    list.append(item);
  }
  return list;
}

function embeddingFacts(values) {
  const norm = Math.sqrt(values.reduce((s, v) => s + v * v, 0));
  const facts = element('dl');
  facts.id = 'embedding';
  const first = values.slice(0, 6).map((v) => v.toFixed(3)).join(', ');
  for (const [term, value] of [['dimension', values.length], ['L2 norm', norm.toFixed(4)], ['first values', `${first}, …`]]) {
    facts.append(element('dt', term), element('dd', String(value)));
  }
  return facts;
}

async function useSample() {
  const model = selected();
  if (!model) return;
  const path = SAMPLES[model.task.kind] ?? SCENE;
  try {
    const response = await fetch(path);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    await submit(await response.blob(), 'the sample image');
  } catch (e) {
    showError(e.message);
  }
}

function wire() {
  $('model').addEventListener('change', onModelChange);
  $('file').addEventListener('change', () => {
    const file = $('file').files[0];
    if (file) submit(file, file.name);
  });
  $('sample').addEventListener('click', useSample);
  $('threshold').addEventListener('input', () => {
    setThreshold($('threshold').value);
    if (state.shown?.model.task.kind === 'detection') render();
  });
  const drop = $('drop');
  drop.addEventListener('click', () => $('file').click());
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      $('file').click();
    }
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) submit(file, file.name);
  });
}

async function start() {
  wire();
  try {
    state.style = await getJson('/ui/drawing.json');
    const server = await getJson('/v2');
    state.device = server.device;
    const cards = await Promise.all(
      server.models.map((name) => getJson(`/v2/models/${encodeURIComponent(name)}`)),
    );
    const select = $('model');
    for (const meta of cards) {
      state.models.set(meta.name, { name: meta.name, task: meta.card.task, route: meta.route });
      select.append(new Option(`${meta.name} (${meta.card.task.kind})`, meta.name));
    }
    $('server').textContent = `${server.name} ${server.version} on ${server.device}, ${cards.length} models loaded`;
    if (!cards.length) {
      showError('The server has no models loaded.');
      return;
    }
    select.disabled = false;
    $('sample').disabled = false;
    onModelChange();
    document.body.dataset.ready = 'true';
  } catch (e) {
    $('server').textContent = 'The server could not be reached.';
    showError(e.message);
  }
}

start();
