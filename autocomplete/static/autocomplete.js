/*
 * Session-aware search-box autocompletion: an ARIA 1.2 combobox (W3C APG "list autocomplete"
 * pattern) that streams every keystroke to the service over a websocket (docs/protocol.md) and
 * falls back to GET /v1/complete while the websocket is down.
 *
 *   <script src="https://service.example/static/autocomplete.js"></script>
 *   <script>new Autocomplete(document.querySelector('#q'), {k: 8});</script>
 *
 * The script adds its stylesheet (autocomplete.css next to it) unless the page already links it.
 *
 * Events dispatched on the input element:
 *   autocomplete:select     cancellable; detail {text, index}; not cancelled = submit the query
 *   autocomplete:submitted  detail {text, session, stored}; stored true: recorded as context,
 *                           'pending': queued (another event follows), false: not recorded
 *   autocomplete:transport  detail {transport: 'websocket' | 'http'}
 */
'use strict';

const SCRIPT_URL = document.currentScript && document.currentScript.src
  ? new URL(document.currentScript.src)
  : null;

let instanceCount = 0;

class Autocomplete {
  static defaults = {
    url: SCRIPT_URL ? SCRIPT_URL.origin : window.location.origin,  // the service's base URL
    stylesheet: SCRIPT_URL ? new URL('autocomplete.css', SCRIPT_URL).href : null,  // added once; null: the page styles it
    k: 8,                         // suggestions to ask for
    minChars: 1,                  // shorter input closes the list
    maxChars: 100,                // the service's prefix limit; longer input closes the list
    listLabel: 'Suggestions',     // accessible name of the list when the input has no label
    storageKey: 'autocomplete-session',
    reconnectMinMs: 250,          // first reconnect delay; doubles up to reconnectMaxMs
    reconnectMaxMs: 8000,
    status: (count) => (count === 0
      ? 'No suggestions.'
      : `${count} suggestion${count === 1 ? '' : 's'} available, use up and down arrows to review.`),
  };

  constructor(input, options = {}) {
    if (!(input instanceof HTMLInputElement)) {
      throw new TypeError('new Autocomplete(input, options) needs an <input> element as its first argument.');
    }
    this.options = {...Autocomplete.defaults, ...options};
    this.input = input;
    this.base = new URL(this.options.url, window.location.href);
    this.session = this.loadSession();
    this.items = [];            // suggestion texts on display
    this.shownText = '';        // the input text the shown suggestions answer
    this.active = -1;           // index of the option named by aria-activedescendant
    this.seq = 0;               // seq of the latest input sent
    this.requested = null;      // the text of the latest request (IMEs may report one text twice)
    this.inFlight = null;       // {seq, text, via} of the latest input still waiting for its answer
    this.composing = false;
    this.ws = null;
    this.wsReady = false;
    this.reconnectDelay = this.options.reconnectMinMs;
    this.reconnectTimer = null;
    this.httpAbort = null;
    this.build();
    this.connect();
  }

  // ----- DOM ---------------------------------------------------------------------------------

  build() {
    const sheet = this.options.stylesheet;
    if (sheet && ![...document.querySelectorAll('link[rel="stylesheet"]')].some((link) => link.href === sheet)) {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = sheet;
      document.head.append(link);
    }
    const id = `autocomplete-${++instanceCount}`;
    this.root = document.createElement('div');
    this.root.className = 'ac';
    const label = this.input.labels && this.input.labels[0];
    const focused = document.activeElement === this.input;
    this.input.replaceWith(this.root);
    this.list = document.createElement('ul');
    this.list.id = `${id}-listbox`;
    this.list.className = 'ac-list';
    this.list.setAttribute('role', 'listbox');
    if (label) {
      if (!label.id) label.id = `${id}-label`;
      this.list.setAttribute('aria-labelledby', label.id);
    } else {
      this.list.setAttribute('aria-label', this.options.listLabel);
    }
    this.list.hidden = true;
    this.statusRegion = document.createElement('div');
    this.statusRegion.className = 'ac-status';
    this.statusRegion.setAttribute('role', 'status');
    this.statusRegion.setAttribute('aria-live', 'polite');
    this.root.append(this.input, this.list, this.statusRegion);
    if (focused) this.input.focus();

    const attributes = {
      role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false',
      'aria-controls': this.list.id, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false',
    };
    for (const [name, value] of Object.entries(attributes)) this.input.setAttribute(name, value);
    this.input.classList.add('ac-input');

    this.input.addEventListener('input', (event) => this.onInput(event));
    this.input.addEventListener('keydown', (event) => this.onKeyDown(event));
    this.input.addEventListener('compositionstart', () => this.onCompositionStart());
    this.input.addEventListener('compositionend', () => this.onCompositionEnd());
    this.input.addEventListener('focus', () => this.onFocus());
    this.input.addEventListener('blur', () => this.close());
    this.list.addEventListener('mousedown', (event) => event.preventDefault());  // focus stays in the input
    this.list.addEventListener('click', (event) => this.onClick(event));
  }

  // ----- state helpers -----------------------------------------------------------------------

  get isOpen() {
    return !this.list.hidden;
  }

  open() {
    if (!this.items.length) return;
    this.list.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
  }

  close() {
    this.setActive(-1);
    this.list.hidden = true;
    this.input.setAttribute('aria-expanded', 'false');
  }

  setActive(index) {
    const options = this.list.children;
    if (this.active >= 0 && this.active < options.length) {
      options[this.active].setAttribute('aria-selected', 'false');
    }
    this.active = index;
    if (index < 0) {
      this.input.removeAttribute('aria-activedescendant');
      return;
    }
    options[index].setAttribute('aria-selected', 'true');
    this.input.setAttribute('aria-activedescendant', options[index].id);
    options[index].scrollIntoView({block: 'nearest'});
  }

  move(step) {
    if (!this.items.length) return;
    if (!this.isOpen) this.open();
    const n = this.items.length;
    const start = this.active < 0 ? (step > 0 ? -1 : n) : this.active;
    this.setActive((start + step + n) % n);
  }

  /** Show the suggestions answering `text`, reusing the option elements (no flicker). */
  render(text, items) {
    const texts = items.map((item) => item.text);
    const unchanged = text === this.shownText && texts.length === this.items.length
      && texts.every((t, i) => t === this.items[i]);
    this.shownText = text;
    if (!unchanged) {
      this.setActive(-1);
      this.items = texts;
      const options = this.list.children;
      texts.forEach((suggestion, i) => {
        const option = options[i] || this.list.appendChild(this.createOption(i));
        this.fillOption(option, text, suggestion);
      });
      while (options.length > texts.length) options[options.length - 1].remove();
    }
    this.announce(this.options.status(texts.length));
    if (texts.length && document.activeElement === this.input) this.open();
    else if (!texts.length) this.close();
  }

  createOption(index) {
    const option = document.createElement('li');
    option.id = `${this.list.id}-${index}`;
    option.className = 'ac-option';
    option.setAttribute('role', 'option');
    option.setAttribute('aria-selected', 'false');
    option.dataset.index = String(index);
    return option;
  }

  fillOption(option, typed, suggestion) {
    if (option.dataset.text === suggestion && option.dataset.typed === typed) return;
    option.dataset.text = suggestion;
    option.dataset.typed = typed;
    const cut = typedLength(typed, suggestion);
    const completion = document.createElement('mark');
    completion.textContent = suggestion.slice(cut);
    option.replaceChildren(suggestion.slice(0, cut), completion);
  }

  announce(message) {
    if (this.statusRegion.textContent !== message) this.statusRegion.textContent = message;
  }

  clearSuggestions() {
    this.close();
    this.items = [];
    this.shownText = '';
    this.list.replaceChildren();
    this.announce('');
  }

  // ----- event handlers ----------------------------------------------------------------------

  onInput(event) {
    if (this.composing || (event && event.isComposing)) return;
    this.request(this.input.value);
  }

  onFocus() {
    if (!this.ws && !this.reconnectTimer) this.connect();  // closed while idle: come back now
    if (this.shownText === this.input.value) this.open();
  }

  onCompositionStart() {
    this.composing = true;
  }

  onCompositionEnd() {
    this.composing = false;
    this.request(this.input.value);
  }

  onKeyDown(event) {
    if (event.isComposing || event.keyCode === 229) return;  // the IME owns these keys
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    switch (event.key) {
      case 'ArrowDown':
        event.preventDefault();
        this.move(1);
        break;
      case 'ArrowUp':
        event.preventDefault();
        this.move(-1);
        break;
      case 'Enter': {
        event.preventDefault();
        const chosen = this.isOpen && this.active >= 0 ? this.active : -1;
        const text = chosen >= 0 ? this.items[chosen] : this.input.value;
        if (text.trim()) this.select(text, chosen);
        break;
      }
      case 'Escape':
        if (this.isOpen) {
          event.preventDefault();
          this.close();
        } else if (this.input.value) {
          event.preventDefault();
          this.input.value = '';
          this.request('');
        }
        break;
      case 'Tab':
        if (this.isOpen && this.active >= 0) this.input.value = this.items[this.active];
        this.close();
        break;
      case 'Home':
      case 'End':
      case 'ArrowLeft':
      case 'ArrowRight':
        this.setActive(-1);  // visual focus back to the text; the caret moves as usual
        break;
      default:
        break;
    }
  }

  onClick(event) {
    const option = event.target.closest('[role="option"]');
    if (!option) return;
    const index = Number(option.dataset.index);
    this.select(this.items[index], index);
  }

  onMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      console.warn('autocomplete: ignoring a frame that is not JSON', error);
      return;
    }
    switch (message.type) {
      case 'hello':
        this.saveSession(message.session);
        this.wsReady = true;
        this.reconnectDelay = this.options.reconnectMinMs;
        this.emit('autocomplete:transport', {transport: 'websocket'});
        if (this.inFlight && this.inFlight.via === 'http') this.send(this.inFlight.seq, this.inFlight.text);
        break;
      case 'completions':
        this.answer(message.seq, message.text, message.items);
        break;
      case 'superseded':
        break;  // a newer input of ours is on its way; its answer will come
      case 'submitted':  // stored: true, false, or 'pending' (then a 'stored' frame follows)
      case 'stored':
        this.emit('autocomplete:submitted', {text: message.text, session: this.session, stored: message.stored});
        break;
      case 'error':
        console.warn(`autocomplete: service error ${message.code}: ${message.message}`);
        if (message.seq !== this.seq) break;
        if (message.code === 'rate_limited') this.sendHttp(message.seq, this.input.value);
        else this.answer(message.seq, this.input.value, []);
        break;
      default:
        break;
    }
  }

  // ----- actions -----------------------------------------------------------------------------

  /** Ask for the completions of `text`; only the answer to the latest request is ever shown. */
  request(text) {
    if (text === this.requested) return;
    this.requested = text;
    const seq = ++this.seq;
    this.setActive(-1);
    if (text.length < this.options.minChars || text.length > this.options.maxChars) {
      this.inFlight = null;
      if (this.httpAbort) this.httpAbort.abort();
      this.clearSuggestions();
      return;
    }
    this.send(seq, text);
  }

  send(seq, text) {
    if (this.wsReady) {
      if (this.httpAbort) this.httpAbort.abort();
      this.inFlight = {seq, text, via: 'websocket'};
      this.ws.send(JSON.stringify({type: 'input', seq, text, k: this.options.k}));
    } else {
      if (!this.ws && !this.reconnectTimer) this.connect();
      this.sendHttp(seq, text);
    }
  }

  async sendHttp(seq, text) {
    this.inFlight = {seq, text, via: 'http'};
    if (this.httpAbort) this.httpAbort.abort();
    const abort = new AbortController();
    this.httpAbort = abort;
    const url = new URL('v1/complete', this.base);
    url.searchParams.set('q', text);
    url.searchParams.set('k', String(this.options.k));
    // the session goes in a header, never in a URL (links, logs, Referer)
    const headers = this.session ? {'X-Autocomplete-Session': this.session} : {};
    try {
      const response = await fetch(url, {signal: abort.signal, credentials: 'include', headers});
      if (!response.ok) throw new Error(`GET /v1/complete answered ${response.status}`);
      const body = await response.json();
      if (body.session && !this.session) this.saveSession(body.session);
      this.answer(seq, body.text ?? text, body.items);
    } catch (error) {
      if (error.name !== 'AbortError') console.warn('autocomplete: HTTP fallback failed', error);
    }
  }

  answer(seq, text, items) {
    if (seq !== this.seq) return;  // an answer to older input: never overwrite newer suggestions
    this.inFlight = null;
    this.render(this.input.value, items || []);
  }

  /** Fire the cancellable autocomplete:select event; unless cancelled, submit `text`. */
  select(text, index = -1) {
    const proceed = this.emit('autocomplete:select', {text, index}, true);
    this.close();
    if (!proceed) return;
    this.input.value = text;
    this.clearSuggestions();
    this.seq += 1;  // answers still on their way belong to the old text
    this.inFlight = null;
    this.requested = null;
    this.submit(text);
  }

  submit(text) {
    if (this.wsReady) {
      this.ws.send(JSON.stringify({type: 'submit', text}));
      return;
    }
    fetch(new URL('v1/submit', this.base), {
      method: 'POST',
      credentials: 'include',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({session: this.session, text}),
    }).then(async (response) => {
      if (!response.ok) throw new Error(`POST /v1/submit answered ${response.status}`);
      const body = await response.json().catch(() => ({}));
      if (body.session) this.saveSession(body.session);
      this.emit('autocomplete:submitted', {text, session: this.session, stored: body.stored});
    }).catch((error) => console.warn('autocomplete: submit failed', error));
  }

  // ----- connection --------------------------------------------------------------------------

  connect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const url = new URL('v1/ws', this.base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    // the session rides in the Sec-WebSocket-Protocol header, never in the URL
    const protocols = ['autocomplete.v1'];
    if (this.session) protocols.push(`autocomplete.session.${this.session}`);
    const ws = new WebSocket(url, protocols);
    this.ws = ws;
    ws.addEventListener('message', (event) => this.onMessage(event));
    ws.addEventListener('close', (event) => this.onClose(ws, event));
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    const wasReady = this.wsReady;
    this.ws = null;
    this.wsReady = false;
    if (wasReady) this.emit('autocomplete:transport', {transport: 'http'});
    if (this.inFlight && this.inFlight.via === 'websocket') this.sendHttp(this.inFlight.seq, this.inFlight.text);
    if (event.code === 1000) return;  // closed while idle: reconnect on the next focus or keystroke
    this.reconnectTimer = setTimeout(() => this.connect(), this.reconnectDelay * (0.8 + 0.4 * Math.random()));
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.options.reconnectMaxMs);
  }

  loadSession() {
    try {
      return window.sessionStorage.getItem(this.options.storageKey);
    } catch {
      return null;  // storage disabled: the session lives as long as the page
    }
  }

  saveSession(session) {
    this.session = session;
    try {
      window.sessionStorage.setItem(this.options.storageKey, session);
    } catch {
      // storage disabled: keep the session in memory only
    }
  }

  emit(name, detail, cancelable = false) {
    return this.input.dispatchEvent(new CustomEvent(name, {detail, bubbles: true, cancelable}));
  }
}

/** Length of the part of `suggestion` the user typed: the common prefix, ignoring case. */
function typedLength(typed, suggestion) {
  const a = typed.trimStart().toLowerCase();
  const b = suggestion.toLowerCase();
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
  return a.length === typed.trimStart().length && b.length === suggestion.length ? i : 0;
}

window.Autocomplete = Autocomplete;
