// The watch page: what the video is, who may watch, and the player for those who may.

import { ApiError, api, config, session } from './api.js';
import { el } from './dom.js';
import { gateText } from './gate.js';
import { startSignIn } from './main.js';

/** The poster: the public one of a ready video, else the media origin's with the playback token. */
function posterUrl(current, mediaBase, id, hlsUrl) {
  if (current?.poster_url) return current.poster_url;
  const token = new URL(hlsUrl).searchParams.get('hdnts');
  return mediaBase && token ? `${mediaBase.replace(/\/+$/, '')}/media/${id}/poster.jpg?hdnts=${encodeURIComponent(token)}` : '';
}

export function watchPage(id) {
  const heading = el('h1', {}, 'Loading…');
  const stage = el('div', { class: 'stage', 'data-state': 'loading' });
  const message = el('div', { class: 'watch-message', role: 'status', 'aria-live': 'polite' });
  const about = el('div', { class: 'about' });
  const node = el('section', { class: 'watch' }, heading, stage, message, about);
  let hls = null;
  let video = null;
  let current = null; // the video's metadata
  let gone = false;

  const setState = (state, text, ...actions) => {
    stage.dataset.state = state;
    message.replaceChildren(
      text ? el('p', { class: state === 'error' || state === 'denied' ? 'error-text' : '' }, text) : '',
      ...actions.map((a) => el('button', { type: 'button', onclick: a.run }, a.label)));
  };

  async function load() {
    try {
      current = await api('GET', `/api/v1/videos/${id}`);
    } catch (e) {
      heading.textContent = 'Video not available';
      if (e instanceof ApiError && e.code === 'not_found') {
        setState('error', 'There is no video at this address, or it is not ready yet (until then only its creator can see it).');
      } else setState('error', `The video could not be loaded: ${e.message}`, { label: 'Try again', run: load });
      return;
    }
    heading.textContent = current.title;
    // Shown before anyone signs in or is admitted: a poster is public like the title.
    if (current.poster_url) stage.replaceChildren(el('img', { class: 'still', src: current.poster_url, alt: `Poster of ${current.title}` }));
    about.replaceChildren(
      el('p', { class: 'who' }, el('strong', {}, 'Who may watch: '), gateText(current.gate)),
      current.description ? el('p', { class: 'description' }, current.description) : '');
    if (!session()) {
      setState('signed_out', 'Sign in with your wallet to watch. Your wallet is checked against the rule above; nothing is paid or transferred.', { label: 'Sign in to watch', run: startSignIn });
      return;
    }
    play();
  }

  async function play(resumeAt = 0) {
    setState('checking', 'Checking that your wallet may watch…');
    let grant;
    try {
      grant = await api('POST', `/api/v1/videos/${id}/playback`);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const retry = { label: 'Check again', run: () => play(resumeAt) };
      switch (e.code) {
        case 'not_token_holder':
          return setState('denied', `Your wallet ${session()?.address ?? ''} may not watch this video: it is for ${gateText(current.gate)}. Get the token in this wallet (or sign in with one that has it), then check again.`, retry);
        case 'not_ready':
          return setState('denied', `This video is not ready yet (${current.status}${current.progress ? `, ${current.progress} %` : ''}). It can be watched once processing is done.`, retry);
        case 'gate_check_unavailable':
          return setState('error', 'Ownership could not be checked right now because the blockchain did not answer, and access is never granted without that check. Try again in a moment.', { label: 'Try again', run: () => play(resumeAt) });
        case 'not_found':
          return setState('error', 'This video is no longer available.');
        default:
          if (e.status === 401) return setState('signed_out', 'Your session has ended. Sign in again to watch.', { label: 'Sign in to watch', run: startSignIn });
          return setState('error', `Playback could not start: ${e.message}`, retry);
      }
    }
    if (gone) return;
    const { media_base_url: mediaBase } = await config();
    stage.replaceChildren();
    video = el('video', { id: 'player', controls: true, playsinline: true, preload: 'auto', 'aria-label': `Video: ${current.title}` });
    const poster = posterUrl(current, mediaBase, id, grant.hls);
    if (poster) video.poster = poster;
    stage.append(video);
    setState('playing', '');
    const Hls = (await import('hls.js')).default;
    if (Hls.isSupported()) {
      hls = new Hls({ enableWorker: false, startPosition: resumeAt || -1 });
      hls.on(Hls.Events.ERROR, (_, d) => {
        if (!d.fatal) return;
        const status = d.response?.code;
        hls.destroy();
        hls = null;
        const at = video?.currentTime ?? 0;
        if (status === 403 || status === 401) {
          setState('expired', 'Your viewing link has expired (links last for one viewing session). Get a new one to continue where you were.', { label: 'Continue watching', run: () => play(at) });
        } else {
          setState('error', `Playback stopped: ${d.details}. Check your connection and try again.`, { label: 'Try again', run: () => play(at) });
        }
      });
      hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => {
        if (d.levels.length > 1) stage.append(qualityPicker(hls, d.levels));
      });
      hls.loadSource(grant.hls);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = grant.hls;
      if (resumeAt) video.currentTime = resumeAt;
      video.addEventListener('error', () => setState('expired', 'Playback stopped (the viewing link may have expired).', { label: 'Continue watching', run: () => play(video.currentTime) }));
    } else {
      return setState('error', 'This browser cannot play HLS video. Try a current version of Chrome, Firefox, Edge or Safari.');
    }
    video.play().catch(() => {
      // Autoplay with sound was refused: the controls are there to press play.
    });
  }

  load();
  return {
    title: 'Watch',
    node,
    leave() {
      gone = true;
      hls?.destroy();
    },
  };
}

function qualityPicker(hls, levels) {
  const select = el('select', { id: 'quality' },
    el('option', { value: '-1' }, 'Auto'),
    ...levels
      .map((l, i) => ({ l, i }))
      .sort((a, b) => (b.l.height || b.l.bitrate) - (a.l.height || a.l.bitrate)) // highest first
      .map(({ l, i }) => el('option', { value: String(i) }, l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s`)));
  select.addEventListener('change', () => {
    hls.currentLevel = Number(select.value);
  });
  return el('p', { class: 'quality' }, el('label', { for: 'quality' }, 'Quality '), select);
}
