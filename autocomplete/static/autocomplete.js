/*
 * Session-aware search-box autocompletion: an ARIA 1.2 combobox (W3C APG "list autocomplete"
 * pattern) that streams keystrokes to the service over a websocket (docs/protocol.md) and falls
 * back to GET /v1/complete while the websocket is down. Options, events and keys: docs/widget.md.
 *
 *   <script src="https://service.example/static/autocomplete.js"></script>
 *   <script>new Autocomplete(document.querySelector('#q'), {k: 8});</script>
 *
 * The input stays where it is and keeps its own styles: the list is positioned over the content
 * below it (never over the form's submit button), or fills the screen below a media query.
 * Inside a <form>, Enter and choosing a suggestion submit that form. The script adds its
 * stylesheet (autocomplete.css next to it) unless the page already links it.
 *
 * Events dispatched on the input element (they bubble):
 *   autocomplete:select     cancellable; detail {text, index, rank}; cancelled = nothing is submitted
 *   autocomplete:submitted  detail {text, rank, stored, via, retried, session}; stored 'pending':
 *                           queued by the service, a second event tells what became of it
 *   autocomplete:transport  detail {transport: 'websocket' | 'http'}
 *   autocomplete:error      detail {kind: 'refused' | 'unreachable' | 'service', code, reason, message}
 *   autocomplete:forgotten  detail {text, forgotten}: a recent search was removed (forgotten false:
 *                           the service could not delete it from its store)
 *
 * Recent searches: focusing the empty box (or ArrowDown on it) shows the person's recent searches
 * (options `user`, a key signed by the host page, and `history`); Delete on the active one, or a
 * click on its x, removes it from the person's history at once.
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
    maxChars: 100,                // the service's prefix limit; longer input shows tooLongMessage
    maxQueryChars: 200,           // the service's limit on a submitted query
    listLabel: 'Suggestions',     // accessible name of the list when the input has no label
    storageKey: 'autocomplete-session',
    previewOnArrow: false,        // true: the arrow keys also put the active option in the input
    submitForm: true,             // Enter or a chosen suggestion submits the input's form
    detachedMediaQuery: '(max-width: 680px)',  // full-screen list where this matches; '' = never
    container: null,              // element the list is added to (default: the form, or the input's parent)
    maxInputsPerSecond: 20,       // frames per second at most (the service allows 40 per connection)
    reconnectMinMs: 1000,         // first reconnect delay; doubles up to reconnectMaxMs
    reconnectMaxMs: 30000,
    status: (count) => (count === 0
      ? 'No suggestions.'
      : `${count} suggestion${count === 1 ? '' : 's'} available, use up and down arrows to review.`),
    tooLongMessage: (max) => `No suggestions for text longer than ${max} characters.`,
    refusedMessage: (reason) => 'Suggestions are unavailable: the service does not accept this page'
      + (reason ? ` (${reason}).` : '.'),
    unreachableMessage: 'Suggestions are unavailable: the service cannot be reached.',
    correctedText: 'corrected spelling',
    closeLabel: 'Close',
    user: null,                   // the person's key, signed by the host page (docs/widget.md); null: a cookie
    history: true,                // false: no recent searches, nothing added to the person's history
    recentText: 'recent search',  // visually hidden note on a recent search
    removeLabel: 'Remove from recent searches',  // tooltip of the x on a recent search
    recentStatus: (count) => (count === 0
      ? ''
      : `${count} recent search${count === 1 ? '' : 'es'}, use up and down arrows to review, Delete to remove one.`),
    removedStatus: (text) => `${text} removed from recent searches.`,
  };

  constructor(input, options = {}) {
    if (!(input instanceof HTMLInputElement)) {
      throw new TypeError('new Autocomplete(input, options) needs an <input> element as its first argument.');
    }
    this.options = {...Autocomplete.defaults, ...options};
    this.input = input;
    this.form = input.form;
    this.base = new URL(this.options.url, window.location.href);
    // a user key no valid signed key looks like (it could not ride in a websocket subprotocol)
    // turns the history off rather than falling back to the browser's cookie
    const user = this.options.user;
    this.historyOn = Boolean(this.options.history) && (!user || /^[A-Za-z0-9_.~+-]{1,128}\.[0-9a-f]{64}$/.test(user));
    this.session = this.loadSession();
    this.items = [];            // suggestions on display: {text, matched, corrected, recent}
    this.recent = false;        // the items on display are the person's recent searches
    this.shownText = '';        // the input text the shown suggestions answer
    this.typed = input.value;   // what the person typed (an arrow-key preview is not typing)
    this.active = -1;           // index of the option named by aria-activedescendant
    this.chosen = null;         // {text, rank} of the suggestion chosen for the next submit
    this.seq = 0;               // seq of the latest request
    this.requested = null;      // the text of the latest request (IMEs may report one text twice)
    this.pending = null;        // {seq, text}: the newest text, waiting for the one in flight
    this.inFlight = null;       // {seq, text}: the one input on the websocket still unanswered
    this.httpInFlight = null;   // {seq, text}: the input asked over HTTP
    this.httpAbort = null;
    this.tokens = this.options.maxInputsPerSecond;
    this.tokenStamp = performance.now();
    this.sendTimer = null;
    this.submits = [];          // submits sent on the websocket, waiting for their acknowledgement
    this.composing = false;
    this.ws = null;
    this.wsReady = false;
    this.transport = null;      // what answered last: 'websocket' or 'http'
    this.reconnectDelay = this.options.reconnectMinMs;
    this.reconnectTimer = null;
    this.failure = null;        // {kind, code, reason} while the service refuses or cannot be reached
    this.note = '';             // a quiet note (text too long for suggestions)
    this.detached = false;
    this.moving = false;        // the input is being moved in or out of the detached dialog
    this.media = this.options.detachedMediaQuery && window.matchMedia
      ? window.matchMedia(this.options.detachedMediaQuery)
      : null;
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
    this.id = `autocomplete-${++instanceCount}`;
    this.popup = document.createElement('div');
    this.popup.className = 'ac ac-popup';
    this.list = document.createElement('ul');
    this.list.id = `${this.id}-listbox`;
    this.list.className = 'ac-list';
    this.list.setAttribute('role', 'listbox');
    const label = this.input.labels && this.input.labels[0];
    if (label) {
      if (!label.id) label.id = `${this.id}-label`;
      this.list.setAttribute('aria-labelledby', label.id);
    } else {
      this.list.setAttribute('aria-label', this.options.listLabel);
    }
    this.list.hidden = true;
    this.message = document.createElement('div');
    this.message.className = 'ac-message';
    this.message.setAttribute('role', 'status');
    this.statusRegion = document.createElement('div');
    this.statusRegion.className = 'ac-status';
    this.statusRegion.setAttribute('role', 'status');
    this.statusRegion.setAttribute('aria-live', 'polite');
    this.popup.append(this.list, this.message, this.statusRegion);
    // The input stays in place; the popup goes to the end of the form (outside any <label>, whose
    // text would otherwise name the input) and is positioned under the input by place().
    this.container = this.options.container || this.form
      || (this.input.closest('label') || this.input).parentElement || document.body;
    this.container.append(this.popup);

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
    this.input.addEventListener('blur', () => this.onBlur());
    this.list.addEventListener('mousedown', (event) => event.preventDefault());  // focus stays in the input
    this.list.addEventListener('click', (event) => this.onClick(event));
    // Bubbling to the window: after the form's own listeners, which may cancel the navigation.
    window.addEventListener('submit', (event) => {
      if (this.form && event.target === this.form) this.onFormSubmit(event);
    });
    const replace = () => this.schedulePlace();
    window.addEventListener('resize', replace, {passive: true});
    document.addEventListener('scroll', replace, {passive: true, capture: true});
    if (this.media) this.media.addEventListener('change', () => this.onMediaChange());
    // An on-screen keyboard shrinks the visual viewport: the detached dialog ends where it starts.
    if (window.visualViewport) window.visualViewport.addEventListener('resize', () => this.fitDialog());
  }

  /** The full-screen dialog of the detached mode, built on first use. */
  buildDialog() {
    this.dialog = document.createElement('dialog');
    this.dialog.className = 'ac ac-dialog';
    const label = this.input.labels && this.input.labels[0];
    this.dialog.setAttribute('aria-label', (label && label.textContent.trim()) || this.options.listLabel);
    this.bar = document.createElement('div');
    this.bar.className = 'ac-bar';
    const close = document.createElement('button');
    close.type = 'button';  // inside the form: never a submit button
    close.className = 'ac-close';
    close.textContent = this.options.closeLabel;
    close.addEventListener('click', () => this.leaveDetached());
    this.bar.append(close);
    this.dialog.append(this.bar);
    this.dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      this.leaveDetached();
    });
    this.dialog.addEventListener('close', () => this.leaveDetached());  // closed by the page
    (this.form || document.body).append(this.dialog);  // in the form: the input stays a form control
    return this.dialog;
  }

  // ----- state helpers -----------------------------------------------------------------------

  get isOpen() {
    return !this.list.hidden;
  }

  open() {
    if (!this.items.length) return;
    this.list.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
    this.place();
  }

  close() {
    this.setActive(-1);
    this.list.hidden = true;
    this.input.setAttribute('aria-expanded', 'false');
    this.place();
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
    if (this.options.previewOnArrow) {
      this.input.value = this.items[this.active].text;
      this.chosen = {text: this.input.value, rank: this.active + 1};
    }
  }

  /** Show the suggestions answering `text`, reusing the option elements (no flicker). */
  render(text, found, recent = false) {
    const items = (found || []).map(asItem).filter((item) => item.text);
    for (const item of items) item.recent = recent;
    const key = (list) => JSON.stringify(list.map((item) => [item.text, item.matched, item.corrected, item.recent]));
    const unchanged = text === this.shownText && key(items) === key(this.items);
    this.shownText = text;
    this.recent = recent;
    if (!unchanged) {
      this.setActive(-1);
      this.items = items;
      const options = this.list.children;
      items.forEach((item, i) => {
        const option = options[i] || this.list.appendChild(this.createOption(i));
        this.fillOption(option, text, item);
      });
      while (options.length > items.length) options[options.length - 1].remove();
    }
    this.announce(recent ? this.options.recentStatus(items.length) : this.options.status(items.length));
    if (items.length && document.activeElement === this.input) this.open();
    else if (!items.length) this.close();
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

  /** The part matching what was typed stays plain, the rest is the completion, in <mark>. */
  fillOption(option, typed, item) {
    const key = JSON.stringify([typed, item.text, item.matched, item.corrected, item.recent]);
    if (option.dataset.key === key) return;
    option.dataset.key = key;
    option.classList.toggle('ac-recent', item.recent);
    if (item.recent) {
      this.fillRecent(option, item);
      return;
    }
    const {text} = item;
    const [start, end] = matchedSpan(typed, item);
    const parts = [];
    if (start > 0) parts.push(marked(text.slice(0, start)));
    parts.push(text.slice(start, end), marked(text.slice(end)));
    if (item.corrected) {
      const note = document.createElement('span');
      note.className = 'ac-visually-hidden';
      note.textContent = `, ${this.options.correctedText}`;
      parts.push(note);
    }
    option.classList.toggle('ac-corrected', item.corrected);
    option.replaceChildren(...parts);
  }

  /**
   * A recent search: a clock, the text, ", recent search" for screen readers and an x that removes
   * it. The x is for the pointer only (aria-hidden, not focusable: an option holds no controls);
   * the keyboard's way is Delete on the active option, which the live region tells about.
   */
  fillRecent(option, item) {
    const icon = document.createElement('span');
    icon.className = 'ac-recent-icon';
    icon.setAttribute('aria-hidden', 'true');
    const text = document.createElement('span');
    text.className = 'ac-recent-text';
    text.textContent = item.text;
    const note = document.createElement('span');
    note.className = 'ac-visually-hidden';
    note.textContent = `, ${this.options.recentText}`;
    const remove = document.createElement('span');
    remove.className = 'ac-remove';
    remove.setAttribute('aria-hidden', 'true');
    remove.title = this.options.removeLabel;
    remove.textContent = '\u00d7';
    option.classList.remove('ac-corrected');
    option.replaceChildren(icon, text, note, remove);
  }

  announce(message) {
    if (this.statusRegion.textContent !== message) this.statusRegion.textContent = message;
  }

  /** The visible message: a refused or unreachable service first, else the quiet note while focused. */
  showMessage() {
    const focused = document.activeElement === this.input;
    const text = this.failure ? this.failure.message : (focused ? this.note : '');
    if (this.message.textContent !== text) this.message.textContent = text;
    this.message.classList.toggle('ac-message-error', Boolean(this.failure));
    this.place();
  }

  clearSuggestions() {
    this.close();
    this.recent = false;
    this.items = [];
    this.shownText = '';
    this.list.replaceChildren();
    this.announce('');
  }

  /** Put the popup under the input, as wide as it; below the form's submit buttons if they are in the way. */
  place() {
    if (this.detached) return;
    const popup = this.popup;
    this.list.style.maxHeight = '';
    if (this.list.hidden && !this.message.textContent) return;
    const box = this.input.getBoundingClientRect();
    let top = box.bottom;
    let height = popup.offsetHeight;
    const buttons = this.form
      ? [...this.form.elements].filter((el) => el.type === 'submit' || el.type === 'image')
        .map((el) => el.getBoundingClientRect())
        .filter((b) => b.width && b.height && b.right > box.left && b.left < box.right && b.bottom > box.bottom)
        .sort((a, b) => a.top - b.top)
      : [];
    const roomy = 4 * parseFloat(getComputedStyle(this.input).fontSize || '16');
    for (const button of buttons) {
      if (button.top >= top + height || button.bottom <= top) continue;
      if (button.top - top >= roomy) {  // enough room above the button: the list ends before it
        this.list.style.maxHeight = `${Math.max(0, button.top - top - 4 - (height - this.list.offsetHeight))}px`;
        height = popup.offsetHeight;
      } else {
        top = button.bottom + 4;  // no room: the list starts below the button
      }
    }
    const parent = popup.offsetParent;
    let originX = -window.scrollX;
    let originY = -window.scrollY;
    if (parent && !(parent === document.body && getComputedStyle(parent).position === 'static')) {
      const frame = parent.getBoundingClientRect();
      originX = frame.left + parent.clientLeft - parent.scrollLeft;
      originY = frame.top + parent.clientTop - parent.scrollTop;
    }
    popup.style.left = `${box.left - originX}px`;
    popup.style.top = `${top - originY}px`;
    popup.style.width = `${box.width}px`;
  }

  schedulePlace() {
    if (this.placeFrame) return;
    this.placeFrame = requestAnimationFrame(() => {
      this.placeFrame = null;
      this.place();
    });
  }

  wantsDetached() {
    return Boolean(this.media && this.media.matches);
  }

  /** Full-screen mode: the input moves into a modal dialog (still inside its form), the list fills the rest. */
  enterDetached() {
    if (this.detached) return;
    const dialog = this.dialog || this.buildDialog();
    const style = getComputedStyle(this.input);
    this.placeholder = document.createElement('span');
    this.placeholder.className = 'ac-placeholder';
    Object.assign(this.placeholder.style, {
      display: 'inline-block', width: `${this.input.offsetWidth}px`, height: `${this.input.offsetHeight}px`,
      margin: style.margin, flex: style.flex, verticalAlign: style.verticalAlign,
    });
    this.moving = true;
    this.input.replaceWith(this.placeholder);
    this.bar.prepend(this.input);
    dialog.append(this.popup);
    for (const name of ['left', 'top', 'width']) this.popup.style[name] = '';
    this.detached = true;
    this.fitDialog();
    dialog.showModal();
    this.input.focus();
    this.moving = false;
    if (!this.input.value) this.showRecent();
    else if (this.shownText === this.input.value) this.open();
  }

  fitDialog() {
    if (!this.detached || !window.visualViewport) return;
    this.dialog.style.height = `${Math.round(window.visualViewport.height)}px`;
  }

  leaveDetached() {
    if (!this.detached) return;
    this.moving = true;
    this.close();
    this.placeholder.replaceWith(this.input);
    this.placeholder = null;
    this.container.append(this.popup);
    this.dialog.close();
    this.detached = false;
    this.moving = false;
    this.place();
  }

  // ----- event handlers ----------------------------------------------------------------------

  onInput(event) {
    if (this.composing || (event && event.isComposing)) return;
    if (this.wantsDetached() && !this.detached && document.activeElement === this.input) this.enterDetached();
    this.typed = this.input.value;
    this.request(this.input.value);
  }

  onFocus() {
    if (this.moving) return;
    if (this.wantsDetached() && !this.detached) {
      this.enterDetached();
      return;
    }
    if (!this.ws && !this.reconnectTimer) this.connect();  // closed while idle: come back now
    if (!this.input.value) this.showRecent();
    else if (this.shownText === this.input.value) this.open();
    if (this.note) this.showMessage();
  }

  onBlur() {
    if (this.moving) return;
    this.close();
    if (this.note) this.showMessage();
  }

  onMediaChange() {
    if (this.detached && !this.wantsDetached()) {
      this.leaveDetached();
      this.moving = true;
      this.input.focus();
      this.moving = false;
    }
  }

  onCompositionStart() {
    this.composing = true;
  }

  onCompositionEnd() {
    this.composing = false;
    this.typed = this.input.value;
    this.request(this.input.value);
  }

  onKeyDown(event) {
    if (event.isComposing || event.keyCode === 229) return;  // the IME owns these keys
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    switch (event.key) {
      case 'ArrowDown':
        event.preventDefault();
        if (!this.input.value && !this.isOpen) {
          this.showRecent(true);
          break;
        }
        this.move(1);
        break;
      case 'Delete':
        if (this.isOpen && this.recent && this.active >= 0) {
          event.preventDefault();
          this.forget(this.active);
        }
        break;
      case 'ArrowUp':
        event.preventDefault();
        this.move(-1);
        break;
      case 'Enter': {
        const index = this.isOpen && this.active >= 0 ? this.active : -1;
        const text = index >= 0 ? this.items[index].text : this.input.value;
        if (!text.trim()) break;  // nothing to search: the page's own Enter behaviour
        event.preventDefault();
        this.select(text, index, index >= 0 && this.recent);
        break;
      }
      case 'Escape':
        if (this.isOpen) {
          event.preventDefault();
          this.input.value = this.typed;  // undo an arrow-key preview
          this.chosen = null;
          this.close();
        } else if (this.detached) {
          event.preventDefault();
          this.leaveDetached();
        } else if (this.input.value) {
          event.preventDefault();
          this.input.value = '';
          this.typed = '';
          this.request('');
        }
        break;
      case 'Tab':
        if (this.isOpen && this.active >= 0) {
          this.input.value = this.items[this.active].text;
          this.typed = this.input.value;
          this.chosen = {text: this.input.value, rank: this.active + 1};
        }
        this.close();
        break;
      case 'Home':
      case 'End':
      case 'ArrowLeft':
      case 'ArrowRight':
        this.typed = this.input.value;  // a previewed option becomes the text being edited
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
    if (this.recent && event.target.closest('.ac-remove')) {  // the x of a recent search: remove it
      this.forget(index);
      return;
    }
    this.select(this.items[index].text, index, this.recent);
  }

  /** Any submission of the input's form (Enter, a chosen suggestion, the page's own button) is recorded. */
  onFormSubmit(event) {
    const text = this.input.value.trim();
    const rank = this.chosen && this.chosen.text === this.input.value ? this.chosen.rank : null;
    this.chosen = null;
    if (this.detached) this.leaveDetached();
    this.close();
    if (text) this.record(text, rank, !event.defaultPrevented);
  }

  onMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;  // not JSON: not ours to read
    }
    switch (message.type) {
      case 'hello':
        this.onHello(message);
        break;
      case 'completions':
        this.onAnswer(message.seq, message.text, message.items);
        break;
      case 'superseded':
        this.onAnswer(message.seq, null, null);  // a newer input of ours was waiting: it gets the answer
        break;
      case 'submitted':  // stored: true, false, or 'pending' (queued; a 'stored' frame follows)
        this.onSubmitted(message);
        break;
      case 'recent':
        this.onRecent(message.seq, message.items);
        break;
      case 'forgotten':
        this.emit('autocomplete:forgotten', {text: message.query, forgotten: message.forgotten});
        break;
      case 'stored':  // what became of a 'pending' submit
        this.emit('autocomplete:submitted', {
          text: message.text, rank: null, stored: message.stored, via: 'websocket', retried: false,
          session: this.session,
        });
        break;
      case 'error':
        this.onServiceError(message);
        break;
      default:
        break;
    }
  }

  onHello(message) {
    this.saveSession(message.session);
    this.wsReady = true;
    this.reconnectDelay = this.options.reconnectMinMs;
    this.tokens = this.options.maxInputsPerSecond;  // a new connection starts with a full allowance
    this.tokenStamp = performance.now();
    this.recover();
    this.setTransport('websocket');
    if (this.httpInFlight && this.httpInFlight.seq === this.seq && !this.pending) {
      this.pending = this.httpInFlight;  // ask again here; the HTTP answer may still win
    }
    this.flush();
  }

  onServiceError(message) {
    const ownInput = this.inFlight && message.seq === this.inFlight.seq;
    if (ownInput) {
      const input = this.inFlight;
      if (message.code === 'rate_limited') {
        this.inFlight = null;
        if (!this.pending && input.seq === this.seq) this.pending = input;  // try again when allowed
        this.tokens = 0;
        this.flush();
        return;
      }
      if (message.code === 'too_long') {
        this.note = this.options.tooLongMessage(this.options.maxChars);
        this.showMessage();
      }
      this.onAnswer(message.seq, input.text, []);
      return;
    }
    if (message.seq == null && this.submits.length) {  // submits carry no seq: the oldest one failed
      this.submitDone(this.submits.shift(), false, 'websocket', message.code);
      return;
    }
    const {code, message: reason} = message;
    this.emit('autocomplete:error', {kind: 'service', code, reason, message: reason});
  }

  // ----- actions -----------------------------------------------------------------------------

  /** Ask for the person's recent searches (the box is empty); `activate`: ArrowDown asked. */
  showRecent(activate = false) {
    if (!this.historyOn || this.failure) return;
    if (this.recent && this.items.length && this.shownText === '') {  // already here
      this.open();
      if (activate) this.move(1);
      return;
    }
    const seq = ++this.seq;
    this.requested = '';
    this.activateRecent = activate;
    if (this.wsReady) {
      this.takeToken();
      this.ws.send(JSON.stringify({type: 'recent', seq, k: this.options.k}));
    } else {
      this.recentHttp(seq);
    }
  }

  onRecent(seq, items) {
    if (seq !== this.seq || this.input.value) return;  // typed meanwhile: the suggestions win
    this.render('', items, true);
    if (this.activateRecent && this.items.length) this.move(1);
    this.activateRecent = false;
  }

  /** Remove the recent search at `index` from the list and from the person's history. */
  forget(index) {
    const item = this.items[index];
    if (!item) return;
    const remaining = this.items.filter((_, i) => i !== index);
    this.render('', remaining, true);
    if (this.items.length) this.setActive(Math.min(index, this.items.length - 1));
    this.announce(this.options.removedStatus(item.text));
    if (this.wsReady) {
      this.takeToken();
      this.ws.send(JSON.stringify({type: 'forget', query: item.text}));
    } else {
      this.forgetHttp(item.text);
    }
  }

  /** Headers and parameters that name the person's history on HTTP. */
  historyRequest(url) {
    const headers = this.session ? {'X-Autocomplete-Session': this.session} : {};
    if (this.options.user) headers['X-Autocomplete-User'] = this.options.user;
    if (!this.historyOn) url.searchParams.set('history', 'false');
    return headers;
  }

  async recentHttp(seq) {
    const url = new URL('v1/history', this.base);
    url.searchParams.set('k', String(this.options.k));
    try {
      const response = await fetch(url, {credentials: 'include', headers: this.historyRequest(url)});
      if (!response.ok) return;
      this.onRecent(seq, (await response.json()).items);
    } catch {
      // no recent searches while the service cannot be reached
    }
  }

  async forgetHttp(text) {
    const url = new URL('v1/history', this.base);
    url.searchParams.set('query', text);
    let forgotten = false;
    try {
      const response = await fetch(url, {method: 'DELETE', credentials: 'include', headers: this.historyRequest(url)});
      forgotten = response.ok && (await response.json()).forgotten === true;
    } catch {
      forgotten = false;
    }
    this.emit('autocomplete:forgotten', {text, forgotten});
  }

  /** Ask for the completions of `text`; only the answer to the latest request is ever shown. */
  request(text) {
    if (text === this.requested) return;
    this.requested = text;
    this.chosen = null;
    const seq = ++this.seq;
    this.setActive(-1);
    const tooLong = text.length > this.options.maxChars;
    const note = tooLong ? this.options.tooLongMessage(this.options.maxChars) : '';
    if (note !== this.note) {
      this.note = note;
      this.showMessage();
    }
    if (text.length < this.options.minChars || tooLong) {
      this.pending = null;
      if (this.httpAbort) this.httpAbort.abort();
      this.httpInFlight = null;
      this.clearSuggestions();
      if (!text && document.activeElement === this.input) this.showRecent();
      return;
    }
    this.pending = {seq, text};
    this.flush();
  }

  /**
   * Send the pending text if the connection allows: one input in flight at a time, and at most
   * maxInputsPerSecond frames a second. The newest text replaces an older pending one.
   */
  flush() {
    clearTimeout(this.sendTimer);
    this.sendTimer = null;
    const next = this.pending;
    if (!next) return;
    if (this.wsReady) {
      if (this.inFlight) return;  // its answer sends the newest text
      const wait = this.takeToken();
      if (wait > 0) {
        this.sendTimer = setTimeout(() => this.flush(), wait);
        return;
      }
      this.pending = null;
      this.inFlight = next;
      this.ws.send(JSON.stringify({type: 'input', seq: next.seq, text: next.text, k: this.options.k}));
      return;
    }
    if (!this.ws && !this.reconnectTimer) this.connect();
    if (this.failure) return;  // kept until the websocket is back: HTTP would fail the same way
    this.pending = null;
    this.sendHttp(next.seq, next.text);
  }

  /** Client-side token bucket: 0 if a frame may go now, else the milliseconds until it may. */
  takeToken() {
    const rate = this.options.maxInputsPerSecond;
    if (!rate) return 0;
    const now = performance.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokenStamp) * rate) / 1000);
    this.tokenStamp = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / rate);
  }

  async sendHttp(seq, text) {
    if (this.httpAbort) this.httpAbort.abort();
    const abort = new AbortController();
    this.httpAbort = abort;
    this.httpInFlight = {seq, text};
    const url = new URL('v1/complete', this.base);
    url.searchParams.set('q', text);
    url.searchParams.set('k', String(this.options.k));
    // the session and the user key go in headers, never in a URL (links, logs, Referer)
    const headers = this.historyRequest(url);
    let body;
    try {
      const response = await fetch(url, {signal: abort.signal, credentials: 'include', headers});
      if (!response.ok) throw new Error(`GET /v1/complete answered ${response.status}`);
      body = await response.json();
    } catch (error) {
      if (error.name === 'AbortError') return;
      if (this.httpAbort === abort) this.httpInFlight = null;
      if (!this.wsReady) {
        if (!this.pending && seq === this.seq) this.pending = {seq, text};  // for when the websocket is back
        this.fail('unreachable', null, error.message);
      }
      return;
    }
    if (this.httpAbort === abort) this.httpInFlight = null;
    if (body.session && !this.session) this.saveSession(body.session);
    if (!this.wsReady) this.recover();
    if (!this.wsReady) this.setTransport('http');
    this.onAnswer(seq, body.text ?? text, body.items, false);
  }

  onAnswer(seq, text, items, viaSocket = true) {
    if (viaSocket && this.inFlight && this.inFlight.seq === seq) this.inFlight = null;
    if (items && seq === this.seq) {
      this.pending = null;
      this.render(this.requested ?? text, items);
    }
    this.flush();
  }

  /** Fire the cancellable autocomplete:select event; unless cancelled, submit `text`. */
  select(text, index = -1, recent = false) {
    const rank = index >= 0 && !recent ? index + 1 : null;  // a recent search is no suggestion's rank
    const proceed = this.emit('autocomplete:select', {text, index, rank}, true);
    this.close();
    if (!proceed) return;
    this.input.value = text;
    this.typed = text;
    this.clearSuggestions();
    this.seq += 1;  // answers still on their way belong to the old text
    this.pending = null;
    this.requested = null;
    if (this.form && this.options.submitForm) {
      this.chosen = {text, rank};
      if (this.detached) this.leaveDetached();
      this.submitForm();  // its submit event records the query (onFormSubmit)
      return;
    }
    this.record(text.trim(), rank, false);
  }

  submitForm() {
    const form = this.form;
    const submitter = [...form.elements].find((el) => (el.type === 'submit' || el.type === 'image') && !el.disabled);
    if (typeof form.requestSubmit === 'function') {
      form.requestSubmit(submitter || null);
    } else {
      this.onFormSubmit({defaultPrevented: false});
      form.submit();
    }
  }

  /**
   * Tell the service about a submitted query: over the websocket (acknowledged; a `false`
   * acknowledgement is retried once over HTTP), or over HTTP when the page navigates away
   * (a keepalive request outlives the page) or the websocket is down.
   */
  record(text, rank, navigating) {
    const submit = {text, rank, retried: false, key: randomKey()};
    if (text.length > this.options.maxQueryChars) {
      this.submitDone(submit, false, 'none', 'too_long');
      return;
    }
    if (this.wsReady && !navigating) {
      this.submits.push(submit);
      this.takeToken();
      this.ws.send(JSON.stringify({type: 'submit', text, rank, idempotency_key: submit.key}));
      return;
    }
    if (this.failure) {
      this.submitDone(submit, false, 'none', this.failure.kind);
      return;
    }
    this.submitHttp(submit);
  }

  onSubmitted(message) {
    const submit = this.submits.shift() || {text: message.text, rank: null, retried: false, key: randomKey()};
    if (message.stored === false && !submit.retried) {
      submit.retried = true;
      this.submitHttp(submit);
      return;
    }
    this.submitDone(submit, message.stored ?? true, 'websocket');
  }

  async submitHttp(submit) {
    try {
      const url = new URL('v1/submit', this.base);
      const headers = {'Content-Type': 'application/json'};
      if (this.options.user) headers['X-Autocomplete-User'] = this.options.user;
      const response = await fetch(url, {
        method: 'POST',
        credentials: 'include',
        keepalive: true,
        headers,
        body: JSON.stringify({
          session: this.session, text: submit.text, rank: submit.rank, idempotency_key: submit.key,
          ...(this.historyOn ? {} : {history: false}),
        }),
      });
      if (!response.ok) throw new Error(`POST /v1/submit answered ${response.status}`);
      const body = await response.json();
      if (body.session) this.saveSession(body.session);
      this.submitDone(submit, body.stored ?? true, 'http');
    } catch (error) {
      this.submitDone(submit, false, 'http', error.message);
    }
  }

  submitDone(submit, stored, via, error = null) {
    this.emit('autocomplete:submitted', {
      text: submit.text, rank: submit.rank, stored, via, retried: submit.retried, session: this.session,
      ...(error ? {error} : {}),
    });
  }

  /** The service refuses this page or cannot be reached: one message and one event per outage. */
  fail(kind, code, reason) {
    if (this.failure && this.failure.kind === kind) return;
    const message = kind === 'refused' ? this.options.refusedMessage(reason) : this.options.unreachableMessage;
    this.failure = {kind, code, reason, message};
    this.clearSuggestions();
    this.showMessage();
    this.emit('autocomplete:error', {kind, code, reason, message});
  }

  recover() {
    if (!this.failure) return;
    this.failure = null;
    this.showMessage();
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
    // the user key too rides in that header
    if (this.options.user && this.historyOn) protocols.push(`autocomplete.user.${this.options.user}`);
    if (!this.historyOn) url.searchParams.set('history', 'false');
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
    clearTimeout(this.sendTimer);
    const lost = this.inFlight;
    this.inFlight = null;
    if (lost && !this.pending && lost.seq === this.seq) this.pending = lost;
    if (event.code === 1008) {
      // The service refused this page (an origin it does not list): HTTP would be refused too.
      this.fail('refused', event.code, event.reason);
    } else if (wasReady && !this.failure) {
      this.setTransport('http');
    }
    const unacknowledged = this.submits.splice(0);
    for (const submit of unacknowledged) {
      submit.retried = true;
      if (this.failure) this.submitDone(submit, false, 'none', this.failure.kind);
      else this.submitHttp(submit);
    }
    if (event.code === 1000 && wasReady) {  // closed while idle: reconnect on the next focus or keystroke
      this.flush();
      return;
    }
    this.reconnectTimer = setTimeout(() => this.connect(), this.reconnectDelay * (0.8 + 0.4 * Math.random()));
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.options.reconnectMaxMs);
    this.flush();  // over HTTP meanwhile
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

  /** autocomplete:transport, once per change of what answers. */
  setTransport(transport) {
    if (transport === this.transport) return;
    this.transport = transport;
    this.emit('autocomplete:transport', {transport});
  }

  emit(name, detail, cancelable = false) {
    return this.input.dispatchEvent(new CustomEvent(name, {detail, bubbles: true, cancelable}));
  }
}

/** A completion as the widget keeps it; a bare string is a completion too. */
function asItem(item) {
  if (typeof item === 'string') return {text: item, matched: null, corrected: false};
  const text = typeof item.text === 'string' ? item.text : '';
  const span = item.matched;
  const valid = Array.isArray(span) && span.length === 2 && Number.isInteger(span[0]) && Number.isInteger(span[1])
    && span[0] >= 0 && span[0] <= span[1] && span[1] <= text.length;
  return {text, matched: valid ? [span[0], span[1]] : null, corrected: item.corrected === true};
}

/** [start, end) of the part of the suggestion that answers what was typed. */
function matchedSpan(typed, item) {
  return item.matched || [0, typedLength(typed, item.text)];
}

/** Length of the part of `suggestion` the user typed: the common prefix, ignoring case. */
function typedLength(typed, suggestion) {
  const a = typed.trimStart().toLowerCase();
  const b = suggestion.toLowerCase();
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
  return a.length === typed.trimStart().length && b.length === suggestion.length ? i : 0;
}

/** 128 random bits in hex: the same query's retry carries the same key, so the service can store it once. */
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));  // unlike randomUUID, also on plain-http pages
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function marked(text) {
  const mark = document.createElement('mark');
  mark.textContent = text;
  return mark;
}

window.Autocomplete = Autocomplete;
