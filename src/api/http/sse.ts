/**
 * A server-sent events response (text/event-stream, WHATWG HTML §9.2): named
 * events with JSON data, heartbeat comments so proxies and clients can tell
 * a quiet stream from a dead one, and one place that releases everything
 * when either side closes.
 */
import type { FastifyReply } from 'fastify';

/** Options of an SSE response. */
export interface SseOptions {
  /** Interval of `: heartbeat` comments (ms). */
  readonly heartbeatMs: number;
  /**
   * A client that reads slower than events arrive makes the server buffer;
   * past this many unsent bytes the stream is closed (the client reconnects
   * and gets the current state first, so nothing is lost but the backlog).
   */
  readonly maxBufferedBytes?: number;
}

/** An open event stream. */
export interface SseStream {
  /** Send one event; false when the stream is closed. */
  send(event: string, data: unknown): boolean;
  /** Send a comment line (ignored by clients). */
  comment(text: string): void;
  /** End the stream (idempotent). */
  close(): void;
  /** Run `fn` once when the stream ends, for whatever reason. */
  onClose(fn: () => void): void;
  readonly closed: boolean;
}

/**
 * Take over the reply and open an event stream on it. Authentication and
 * validation have already run (they are hooks before the handler).
 */
export function openSse(reply: FastifyReply, options: SseOptions): SseStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // Reverse proxies (nginx) buffer responses unless told not to.
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  const maxBuffered = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const closers: (() => void)[] = [];
  let closed = false;

  const finish = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    for (const fn of closers.splice(0)) {
      try {
        fn();
      } catch {
        // One failing clean-up step must not stop the others.
      }
    }
    if (!res.writableEnded) res.end();
  };

  const write = (text: string): boolean => {
    if (closed || res.destroyed) return false;
    res.write(text);
    if (res.writableLength > maxBuffered) {
      finish();
      return false;
    }
    return true;
  };

  const heartbeat = setInterval(() => write(': heartbeat\n\n'), options.heartbeatMs);
  heartbeat.unref();
  res.on('close', finish);
  res.on('error', finish);

  return {
    send(event, data) {
      // JSON.stringify never emits raw newlines, so one `data:` line carries the whole event.
      return write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    comment(text) {
      write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
    },
    close: finish,
    onClose(fn) {
      if (closed) fn();
      else closers.push(fn);
    },
    get closed() {
      return closed;
    },
  };
}
