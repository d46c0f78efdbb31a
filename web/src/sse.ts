// A Server-Sent Events parser (the WHATWG "event stream" format) for a body read
// with fetch(): an EventSource cannot send the key in a header. Fed text in any
// chunks; lines end in LF, CR or CRLF; a blank line dispatches the event.

export interface SseEvent {
  /** The `event:` field; "message" when none was given. */
  type: string;
  /** The `data:` lines, joined with LF. */
  data: string;
  /** The last `id:` seen so far (it carries over to later events). */
  id: string;
}

export class SseParser {
  /** The `retry:` delay in ms, once the stream has sent one. */
  retryMs: number | null = null;
  private rest = '';
  private started = false;
  /** The last chunk ended in CR: an LF starting the next one belongs to it. */
  private skipLf = false;
  private data: string[] = [];
  private type = '';
  private idBuffer: string;

  /** `lastEventId`: the id a reconnection starts from (Last-Event-ID). */
  constructor(
    private readonly onEvent: (e: SseEvent) => void,
    public lastEventId = '',
  ) {
    this.idBuffer = lastEventId;
  }

  feed(chunk: string): void {
    let text = this.rest + chunk;
    if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLf = false;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(text.slice(start, i));
      if (c === '\r') {
        if (i + 1 === text.length) this.skipLf = true;
        else if (text[i + 1] === '\n') i += 1;
      }
      start = i + 1;
    }
    this.rest = text.slice(start);
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return; // a comment (": heartbeat")
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.idBuffer = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    if (this.data.length === 0) {
      this.type = '';
      return;
    }
    const event = { type: this.type || 'message', data: this.data.join('\n'), id: this.lastEventId };
    this.data = [];
    this.type = '';
    this.onEvent(event);
  }
}
