/**
 * Where a Redis URL points (`host:port`), for messages: never the credentials a URL may carry.
 */

/** `host:port` of a Redis URL (port 6379 when it names none), or 'the configured address' when it does not parse. */
export function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'the configured address';
  }
}
