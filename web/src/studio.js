// The creator studio: my videos (status, transcode progress, poster), create with a gate editor,
// tus upload with progress, speed and time left (pause, resume, resume after a reload), edit the
// gate, delete with confirmation.

import * as tus from 'tus-js-client';

import { ApiError, api, config, session } from './api.js';
import { chainName } from './chains.js';
import { el } from './dom.js';
import { gateText } from './gate.js';
import { startSignIn } from './main.js';

const STATUS = {
  awaiting_upload: 'Waiting for upload',
  queued: 'Queued for processing',
  transcoding: 'Processing',
  ready: 'Ready',
  failed: 'Failed',
};

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

// ---- the gate editor ----

/** Rows of rules; `read()` gives the API's gate; `showError(i, field, text)` marks a field. */
function gateEditor(chains, initial = []) {
  const rows = el('div', { class: 'rules' });
  const empty = el('p', { class: 'muted' }, 'No rules: anyone signed in may watch (public).');
  const editors = [];
  const addRule = (r = {}) => {
    const ids = { chain: nextId('chain'), contract: nextId('contract'), standard: nextId('standard'), token: nextId('token'), min: nextId('min') };
    const field = (label, id, input, hint) =>
      el('div', { class: 'field' }, el('label', { for: id }, label), input, hint ? el('p', { class: 'hint', id: `${id}-hint` }, hint) : '', el('p', { class: 'field-error', id: `${id}-error`, hidden: true }));
    const chain = el('select', { id: ids.chain, name: 'chain_id' }, ...chains.map((c) => el('option', { value: String(c), selected: r.chain_id === c }, `${chainName(c)} (${c})`)));
    const contract = el('input', { id: ids.contract, name: 'contract', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: '0x…', value: r.contract ?? '', 'aria-describedby': `${ids.contract}-error` });
    const standard = el('select', { id: ids.standard, name: 'standard' }, ...['erc721', 'erc1155', 'erc20'].map((s) => el('option', { value: s, selected: r.standard === s }, s.replace('erc', 'ERC-'))));
    const token = el('input', { id: ids.token, name: 'token_id', inputmode: 'numeric', autocomplete: 'off', value: r.token_id ?? '', 'aria-describedby': `${ids.token}-hint ${ids.token}-error` });
    const min = el('input', { id: ids.min, name: 'min_balance', inputmode: 'numeric', autocomplete: 'off', value: r.min_balance ?? '', placeholder: '1', 'aria-describedby': `${ids.min}-error` });
    const editor = { inputs: { chain_id: chain, contract, standard, token_id: token, min_balance: min } };
    const box = el('fieldset', { class: 'rule' },
      el('legend', {}, `Rule ${editors.length + 1}`),
      field('Chain', ids.chain, chain),
      field('Token contract', ids.contract, contract),
      field('Standard', ids.standard, standard),
      field('Token ID', ids.token, token, 'ERC-1155: required. ERC-721: optional (one token). ERC-20: leave empty.'),
      field('Minimum balance', ids.min, min),
      el('button', { type: 'button', class: 'secondary', onclick: () => { editors.splice(editors.indexOf(editor), 1); box.remove(); renumber(); } }, `Remove rule ${editors.length + 1}`));
    editor.box = box;
    editors.push(editor);
    rows.append(box);
    renumber();
  };
  const renumber = () => {
    editors.forEach((e, i) => {
      e.box.querySelector('legend').textContent = `Rule ${i + 1}`;
      e.box.querySelector('button').textContent = `Remove rule ${i + 1}`;
    });
    empty.hidden = editors.length > 0;
  };
  for (const r of initial) addRule(r);
  renumber();
  const node = el('fieldset', { class: 'gate' },
    el('legend', {}, 'Who may watch'),
    el('p', { class: 'hint' }, 'A viewer who satisfies any one rule may watch. You always may.'),
    empty, rows,
    el('button', { type: 'button', class: 'secondary', onclick: () => addRule({ chain_id: chains[0], standard: 'erc721' }) }, 'Add a rule'));
  return {
    node,
    read: () => editors.map(({ inputs }) => {
      const rule = { chain_id: Number(inputs.chain_id.value), contract: inputs.contract.value.trim(), standard: inputs.standard.value };
      if (inputs.token_id.value.trim()) rule.token_id = inputs.token_id.value.trim();
      if (inputs.min_balance.value.trim()) rule.min_balance = inputs.min_balance.value.trim();
      return rule;
    }),
    input: (i, name) => editors[i]?.inputs[name],
  };
}

/** Puts `text` on `input` (aria-invalid, its error line); null clears. */
function markField(input, text) {
  const err = input && document.getElementById(`${input.id}-error`);
  if (!input || !err) return false;
  err.textContent = text ?? '';
  err.hidden = !text;
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
  return true;
}

/** The field an API validation sentence concerns (docs/api.md: sentences name fields in backticks). */
function fieldOf(e, form) {
  const m = /`(title|description)`/.exec(e.message);
  if (m) return form.fields[m[1]];
  const rule = /gate rule (\d+)/.exec(e.message);
  if (rule && form.gate) {
    const i = Number(rule[1]);
    const name = /`(contract|token_id|min_balance|standard)`/.exec(e.message)?.[1] ?? (/chain/.test(e.message) ? 'chain_id' : /token_id|erc1155|erc20/.test(e.message) ? 'token_id' : 'contract');
    return form.gate.input(i, name);
  }
  return null;
}

function clearErrors(root) {
  for (const p of root.querySelectorAll('.field-error')) {
    p.hidden = true;
    p.textContent = '';
  }
  for (const i of root.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}

/** Shows an API error on its field (focused), or in `formError`. */
function showApiError(e, form, formError) {
  const input = e instanceof ApiError && e.status === 422 ? fieldOf(e, form) : null;
  if (input && markField(input, e.message.replace(/^gate rule \d+: /, ''))) {
    formError.textContent = 'Please correct the marked field.';
    input.focus();
  } else formError.textContent = e.message;
}

// ---- uploads ----

const fmtBytes = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`);
const fmtTime = (s) => (s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.max(1, Math.round(s))} s`);

/** The upload of `file` to the video's tus URL, with its progress panel; calls `done()` at 100 %. */
function uploadPanel(video, file, done) {
  const bar = el('progress', { max: '100', value: '0', 'aria-label': `Upload of ${file.name}` });
  const text = el('p', { class: 'upload-text', 'aria-live': 'polite' }, 'Starting upload…');
  const pause = el('button', { type: 'button', class: 'secondary' }, 'Pause');
  const node = el('div', { class: 'upload', 'data-testid': 'upload' }, bar, text, pause);
  const samples = []; // [time, bytes] over the last few seconds
  let paused = false;
  let finished = false;
  const upload = new tus.Upload(file, {
    endpoint: video.upload.url,
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    storeFingerprintForResuming: true,
    // One upload per video: the same file (name and size) resumes, whenever it was picked again.
    fingerprint: (f) => Promise.resolve(`streamgate-${video.id}-${f.name}-${f.size}`),
    removeFingerprintOnSuccess: true,
    metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
    onProgress(sent, total) {
      const now = performance.now();
      samples.push([now, sent]);
      while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
      const [t0, b0] = samples[0];
      const speed = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
      const pct = total ? (sent / total) * 100 : 0;
      bar.value = pct;
      node.dataset.percent = String(Math.floor(pct));
      text.textContent = `${Math.floor(pct)} % · ${fmtBytes(sent)} of ${fmtBytes(total)}` +
        (speed > 0 && sent < total ? ` · ${fmtBytes(speed)}/s · about ${fmtTime((total - sent) / speed)} left` : '');
    },
    onSuccess() {
      finished = true;
      bar.value = 100;
      node.dataset.percent = '100';
      text.textContent = `Uploaded ${fmtBytes(file.size)}. Processing starts shortly.`;
      pause.remove();
      done?.();
    },
    onError(err) {
      paused = true;
      pause.textContent = 'Resume';
      if (!navigator.onLine) {
        // tus does not retry while the browser is offline: go on by itself once it is back.
        text.textContent = `The connection dropped at ${Math.floor(bar.value)} %. The upload goes on from there when you are back online.`;
        window.addEventListener('online', () => {
          if (paused && !finished) resume();
        }, { once: true });
        return;
      }
      text.textContent = `The upload stopped: ${err.message.split('\n')[0]}. Resume to continue from where it stopped.`;
    },
  });
  const start = () => upload.findPreviousUploads().then((previous) => {
    if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  });
  const resume = () => {
    paused = false;
    pause.textContent = 'Pause';
    text.textContent = 'Resuming…';
    samples.length = 0;
    start();
  };
  pause.addEventListener('click', () => {
    if (finished) return;
    if (paused) resume();
    else {
      paused = true;
      pause.textContent = 'Resume';
      upload.abort().then(() => {
        text.textContent = `Paused at ${Math.floor(bar.value)} %.`;
      });
    }
  });
  start();
  return { node, abort: () => !finished && upload.abort() };
}

// ---- a confirmation dialog ----

function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const id = nextId('confirm');
    const dialog = el('dialog', { 'aria-labelledby': id },
      el('h2', { id }, title), el('p', {}, text),
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'danger', onclick: () => done(true) }, confirmLabel),
        el('button', { type: 'button', class: 'secondary', autofocus: true, onclick: () => done(false) }, 'Cancel')));
    const done = (v) => {
      dialog.close();
      dialog.remove();
      resolve(v);
    };
    dialog.addEventListener('cancel', () => done(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ---- the page ----

export function studioPage() {
  const node = el('section', { class: 'studio' }, el('h1', {}, 'Studio'));
  const uploads = new Map(); // video id -> panel
  const uploaded = new Set(); // uploaded here, until the server no longer says awaiting_upload
  let timer = null;
  const s = session();
  if (!s) {
    node.append(el('p', {}, 'Sign in with your wallet to publish videos and manage them.'),
      el('button', { type: 'button', onclick: startSignIn }, 'Sign in'));
    return { title: 'Studio', node };
  }
  const list = el('ul', { class: 'my-videos', 'aria-label': 'My videos' });
  const listStatus = el('p', { class: 'muted', role: 'status' }, 'Loading your videos…');
  const cards = new Map();

  config().then(({ chains, media_base_url: mediaBase }) => {
    let form = createForm(chains);
    const fresh = () => {
      const next = createForm(chains);
      form.replaceWith(next);
      form = next;
    };
    node.append(form, el('h2', {}, 'My videos'), listStatus, list);
    refresh();

    async function refresh() {
      clearTimeout(timer);
      let items = [];
      try {
        let cursor = null;
        do {
          const q = new URLSearchParams({ owner: s.address, limit: '100' });
          if (cursor) q.set('cursor', cursor);
          const page = await api('GET', `/api/v1/videos?${q}`);
          items.push(...page.items);
          cursor = page.next_cursor;
        } while (cursor && items.length < 500);
      } catch (e) {
        listStatus.textContent = `Your videos could not be loaded: ${e.message}`;
        return;
      }
      listStatus.textContent = items.length === 0 ? 'No videos yet: create one above.' : '';
      const seen = new Set();
      for (const v of items) {
        seen.add(v.id);
        let card = cards.get(v.id);
        if (!card) {
          card = videoCard(v);
          cards.set(v.id, card);
        }
        card.update(v);
      }
      for (const [id, card] of cards) if (!seen.has(id)) { card.node.remove(); cards.delete(id); }
      list.replaceChildren(...items.map((v) => cards.get(v.id).node));
      for (const v of items) if (v.status !== 'awaiting_upload') uploaded.delete(v.id);
      const busy = items.some((v) => v.status === 'queued' || v.status === 'transcoding');
      if (busy || uploads.size || uploaded.size) timer = setTimeout(refresh, 2000);
    }

    function videoCard(v) {
      const title = el('h3', {}, v.title);
      const status = el('p', { class: 'status', 'data-testid': 'status' });
      const progress = el('progress', { max: '100', hidden: true, 'aria-label': `Processing ${v.title}` });
      const poster = el('img', { class: 'poster', alt: `Poster of ${v.title}`, hidden: true, width: 160, height: 90 });
      const who = el('p', { class: 'muted' });
      const slot = el('div', { class: 'slot' });
      const actions = el('div', { class: 'actions' });
      const node = el('li', { class: 'studio-card', 'data-id': v.id }, poster, el('div', {}, title, status, progress, who, actions, slot));
      let last = null;
      let posterAsked = false;
      const card = {
        node,
        update(nv) {
          last = nv;
          title.textContent = nv.title;
          node.dataset.status = nv.status;
          status.textContent = (STATUS[nv.status] ?? nv.status) +
            (nv.status === 'transcoding' ? ` · ${nv.progress ?? 0} %` : '') +
            (nv.status === 'failed' ? `: ${nv.error ?? 'processing failed'}` : '');
          progress.hidden = nv.status !== 'transcoding';
          if (nv.status !== 'awaiting_upload' && !uploads.has(nv.id) && slot.querySelector('[data-testid=upload]')) slot.replaceChildren();
          progress.value = nv.progress ?? 0;
          who.textContent = `Who may watch: ${gateText(nv.gate)}`;
          if (nv.status === 'ready' && !posterAsked && mediaBase) {
            posterAsked = true;
            api('POST', `/api/v1/videos/${nv.id}/playback`).then((g) => {
              const token = new URL(g.hls).searchParams.get('hdnts');
              poster.src = `${mediaBase.replace(/\/+$/, '')}/media/${nv.id}/poster.jpg?hdnts=${encodeURIComponent(token)}`;
              poster.hidden = false;
            }, () => {});
          }
          const buttons = [];
          if (nv.status === 'ready') buttons.push(el('a', { href: `/watch/${nv.id}`, class: 'button' }, 'Watch', el('span', { class: 'visually-hidden' }, ` ${nv.title}`)));
          if (nv.status === 'awaiting_upload' && !uploads.has(nv.id)) {
            const fid = nextId('file');
            const input = el('input', { type: 'file', id: fid, accept: 'video/*' });
            input.addEventListener('change', () => input.files[0] && startUpload(nv, input.files[0], slot));
            buttons.push(el('span', { class: 'file' }, el('label', { for: fid }, 'Upload (or resume) the file '), input));
          }
          buttons.push(el('button', { type: 'button', class: 'secondary', onclick: () => editGate() }, 'Edit who may watch', el('span', { class: 'visually-hidden' }, ` for ${nv.title}`)));
          buttons.push(el('button', { type: 'button', class: 'danger', onclick: () => remove() }, 'Delete', el('span', { class: 'visually-hidden' }, ` ${nv.title}`)));
          actions.replaceChildren(...buttons);
        },
      };
      function editGate() {
        const editor = gateEditor(chains, last.gate ?? []);
        const formError = el('p', { class: 'form-error', role: 'alert' });
        const form = el('form', { class: 'edit-gate' }, editor.node, formError,
          el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Save'), el('button', { type: 'button', class: 'secondary', onclick: () => form.remove() }, 'Cancel')));
        form.addEventListener('submit', async (ev) => {
          ev.preventDefault();
          clearErrors(form);
          formError.textContent = '';
          try {
            card.update(await api('PUT', `/api/v1/videos/${last.id}/gate`, { json: { gate: editor.read() } }));
            form.remove();
          } catch (e) {
            showApiError(e, { fields: {}, gate: editor }, formError);
          }
        });
        slot.replaceChildren(form);
        form.querySelector('button, input, select')?.focus();
      }
      async function remove() {
        if (!(await confirmDialog(`Delete “${last.title}”?`, 'The video and all its media are removed for good; viewers can no longer watch it.', 'Delete video'))) return;
        try {
          uploads.get(last.id)?.abort();
          await api('DELETE', `/api/v1/videos/${last.id}`);
          refresh();
        } catch (e) {
          status.textContent = `Could not delete: ${e.message}`;
        }
      }
      return card;
    }

    function startUpload(v, file, slot) {
      // The upload URL comes only with the creation answer: kept here so a reload can resume.
      const key = `streamgate.upload.${v.id}`;
      if (v.upload?.url) localStorage.setItem(key, JSON.stringify(v.upload));
      const stored = JSON.parse(localStorage.getItem(key) ?? 'null');
      if (!stored?.url || Date.parse(stored.expires_at) < Date.now()) {
        slot.replaceChildren(el('p', { class: 'error-text' }, 'This video\'s upload link is not in this browser (or has expired): delete the video and create it again.'));
        return;
      }
      const panel = uploadPanel({ ...v, upload: stored }, file, () => {
        localStorage.removeItem(key);
        uploads.delete(v.id);
        uploaded.add(v.id);
        refresh();
      });
      uploads.set(v.id, panel);
      slot.replaceChildren(panel.node);
      cards.get(v.id)?.update(v);
      refresh();
    }

    function createForm(chains) {
      const ids = { title: nextId('title'), description: nextId('description'), file: nextId('file') };
      const title = el('input', { id: ids.title, name: 'title', required: true, maxlength: '200', autocomplete: 'off', 'aria-describedby': `${ids.title}-error` });
      const description = el('textarea', { id: ids.description, name: 'description', rows: '3', 'aria-describedby': `${ids.description}-error` });
      const file = el('input', { id: ids.file, name: 'file', type: 'file', accept: 'video/*', required: true });
      const editor = gateEditor(chains, []);
      const formError = el('p', { class: 'form-error', role: 'alert' });
      const submit = el('button', { type: 'submit' }, 'Create and upload');
      const field = (label, id, input) => el('div', { class: 'field' }, el('label', { for: id }, label), input, el('p', { class: 'field-error', id: `${id}-error`, hidden: true }));
      const form = el('form', { class: 'create', novalidate: true, 'aria-labelledby': 'create-title' },
        el('h2', { id: 'create-title' }, 'New video'),
        field('Title', ids.title, title), field('Description (optional)', ids.description, description),
        field('Video file', ids.file, file), editor.node, formError, submit);
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        clearErrors(form);
        formError.textContent = '';
        if (!title.value.trim()) return showApiError(new ApiError(422, 'invalid_video', '`title` must not be empty'), { fields: { title } }, formError);
        if (!file.files[0]) {
          markField(file, 'Choose the video file to upload.');
          formError.textContent = 'Please correct the marked field.';
          return file.focus();
        }
        submit.disabled = true;
        try {
          const body = { title: title.value.trim(), gate: editor.read() };
          if (description.value.trim()) body.description = description.value.trim();
          const created = await api('POST', '/api/v1/videos', { json: body });
          const v = { id: created.id, title: body.title, status: created.status, gate: body.gate, upload: created.upload };
          const card = videoCard(v);
          cards.set(v.id, card);
          card.update(v);
          list.prepend(card.node);
          listStatus.textContent = '';
          startUpload(v, file.files[0], card.node.querySelector('.slot'));
          fresh();
        } catch (e) {
          showApiError(e, { fields: { title, description }, gate: editor }, formError);
        } finally {
          submit.disabled = false;
        }
      });
      return form;
    }
  });
  return {
    title: 'Studio',
    node,
    leave() {
      clearTimeout(timer);
    },
  };
}
