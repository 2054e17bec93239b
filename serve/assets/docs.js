// The API page: renders /openapi.json (every path and method, its parameters, request body and
// responses) with a form per operation that sends a request to this server and shows the answer.

import { element } from '/ui/dom.js';

const $ = (id) => document.getElementById(id);

/** A `$ref` such as `#/components/responses/Error`, resolved in the document. */
function resolve(doc, value) {
  if (!value?.$ref) return value;
  return value.$ref.replace(/^#\//, '').split('/').reduce((node, key) => node?.[key], doc);
}

function schemaText(schema) {
  if (!schema) return '';
  const parts = [schema.type ?? ''];
  if (schema.enum) parts.push(`one of ${schema.enum.join(', ')}`);
  if (schema.default !== undefined) parts.push(`default ${schema.default}`);
  if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  return parts.filter(Boolean).join('; ');
}

let fieldCount = 0;

/** A labelled input; returns [wrapper, input]. */
function field(labelText, input) {
  input.id = `field-${++fieldCount}`;
  const label = element('label', labelText);
  label.htmlFor = input.id;
  const wrapper = element('div');
  wrapper.append(label, element('br'), input);
  return [wrapper, input];
}

function parameterTable(parameters) {
  const table = element('table');
  table.append(element('caption', 'Parameters'));
  const head = table.createTHead().insertRow();
  for (const h of ['name', 'in', 'required', 'schema', 'description']) head.append(element('th', h));
  const body = table.createTBody();
  for (const p of parameters) {
    const row = body.insertRow();
    for (const v of [p.name, p.in, p.required ? 'yes' : 'no', schemaText(p.schema), p.description ?? '']) {
      row.insertCell().textContent = v;
    }
  }
  return table;
}

/** The try-it form of one operation. */
function tryForm(path, method, operation, parameters) {
  const form = element('form', undefined, 'try');
  form.setAttribute('aria-label', `Try ${method.toUpperCase()} ${path}`);
  const inputs = [];
  for (const p of parameters) {
    let input;
    if (p.schema?.enum) {
      input = element('select');
      if (!p.required) input.append(new Option('(not set)', ''));
      for (const v of p.schema.enum) input.append(new Option(v, v));
    } else {
      input = element('input');
      input.type = p.schema?.type === 'integer' || p.schema?.type === 'number' ? 'number' : 'text';
      if (p.schema?.type === 'number') input.step = 'any';
    }
    const [wrapper] = field(`${p.name} (${p.in}${p.required ? ', required' : ''})`, input);
    form.append(wrapper);
    inputs.push([p, input]);
  }
  const content = operation.requestBody?.content ?? {};
  const types = Object.keys(content);
  let file = null;
  let text = null;
  if (types.some((t) => t.startsWith('image/'))) {
    [, file] = field('image file (sent as the request body)', element('input'));
    file.type = 'file';
    file.accept = types.filter((t) => t.startsWith('image/')).join(',');
    form.append(file.parentElement);
  } else if (types.includes('application/json')) {
    [, text] = field('JSON body', element('textarea'));
    text.rows = 6;
    text.cols = 50;
    form.append(text.parentElement);
  }
  const send = element('button', 'Send');
  send.type = 'submit';
  const output = element('pre');
  output.setAttribute('aria-live', 'polite');
  output.hidden = true;
  form.append(send, output);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const [p, input] of inputs) {
      if (input.value === '') continue;
      if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(input.value));
      else if (p.in === 'query') query.set(p.name, input.value);
    }
    if (query.toString()) url += `?${query}`;
    const init = { method: method.toUpperCase() };
    if (file?.files[0]) {
      init.body = file.files[0];
      init.headers = { 'Content-Type': file.files[0].type || 'application/octet-stream' };
    } else if (text && text.value.trim()) {
      init.body = text.value;
      init.headers = { 'Content-Type': 'application/json' };
    }
    output.hidden = false;
    output.textContent = `${init.method} ${url} …`;
    try {
      const started = performance.now();
      const response = await fetch(url, init);
      const ms = (performance.now() - started).toFixed(0);
      let body = await response.text();
      try {
        body = JSON.stringify(JSON.parse(body), null, 2);
      } catch {
        // Not JSON (the metrics are text): shown as it came.
      }
      output.textContent = `${init.method} ${url}\nHTTP ${response.status} in ${ms} ms\n\n${body}`;
    } catch (e) {
      output.textContent = `${init.method} ${url}\nthe request failed: ${e.message}`;
    }
  });
  return form;
}

function operationBlock(doc, path, method, operation) {
  const block = element('details', undefined, 'operation');
  const summary = element('summary');
  summary.append(
    element('span', method.toUpperCase(), `method ${method}`),
    element('span', path, 'path'),
    operation.summary ?? '',
  );
  block.append(summary);
  const parameters = operation.parameters ?? [];
  if (path.includes('{')) {
    for (const name of path.match(/{[^}]+}/g).map((m) => m.slice(1, -1))) {
      if (!parameters.some((p) => p.name === name)) {
        parameters.unshift({ name, in: 'path', required: true, schema: { type: 'string' } });
      }
    }
  }
  if (parameters.length) block.append(parameterTable(parameters));
  const content = operation.requestBody?.content;
  if (content) {
    block.append(element('p', `Request body: ${Object.keys(content).join(', ')}`));
  }
  const responses = element('ul');
  responses.setAttribute('aria-label', 'Responses');
  for (const [code, response] of Object.entries(operation.responses ?? {})) {
    responses.append(element('li', `${code}: ${resolve(doc, response)?.description ?? ''}`));
  }
  block.append(element('p', 'Responses:'), responses, tryForm(path, method, operation, parameters));
  return block;
}

async function start() {
  try {
    const response = await fetch('/openapi.json');
    if (!response.ok) throw new Error(`/openapi.json: HTTP ${response.status}`);
    const doc = await response.json();
    $('title').textContent = `${doc.info.title} ${doc.info.version} API`;
    document.title = `${doc.info.title} — API`;
    const list = $('operations');
    list.replaceChildren();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        list.append(operationBlock(doc, path, method, operation));
      }
    }
    document.body.dataset.ready = 'true';
  } catch (e) {
    $('operations').textContent = '';
    $('error').textContent = `The API description could not be loaded: ${e.message}`;
    $('error').hidden = false;
  }
}

start();
