/**
 * One Lua script run for many items in one call (with CallBatch): the job store's attempt
 * transitions and the commit ledger's records. The items' keys and arguments go concatenated,
 * each item's its script's own count of them, and the reply holds each item's answer in order.
 */

/** What an item of a batched script answers when it raised an error: this, then the message. */
export const BATCH_ITEM_ERROR = '!';

/** How many keys and arguments each item of a batched script takes. */
export interface BatchShape {
  readonly keys: number;
  readonly args: number;
}

/** One item of a batched script's call: its keys and its arguments. */
export interface BatchItem {
  readonly keys: readonly string[];
  readonly args: readonly string[];
}

/**
 * The script running `body` (the script of one item: its KEYS and ARGV the item's own) for every
 * item of a call. Each item runs in its own protected call, so one item's error (a record that
 * does not decode) is that item's answer (BATCH_ITEM_ERROR and the message) and the others still
 * run, as they would have with one script each. What an item wrote before its error stays
 * written, as with a script of its own (Redis does not roll scripts back).
 */
export function batchedScript(body: string, shape: BatchShape): string {
  const { keys: k, args: a } = shape;
  return `local function one(KEYS, ARGV)
${body}
end
local out = {}
for i = 0, #KEYS / ${k} - 1 do
  local keys, args = {}, {}
  for j = 1, ${k} do keys[j] = KEYS[i * ${k} + j] end
  for j = 1, ${a} do args[j] = ARGV[i * ${a} + j] end
  local ok, r = pcall(one, keys, args)
  if ok then
    -- nil would end the reply's list there: the items after it would go unanswered.
    if r == nil then r = false end
    out[i + 1] = r
  elseif type(r) == 'table' then out[i + 1] = '${BATCH_ITEM_ERROR}' .. tostring(r.err)
  else out[i + 1] = '${BATCH_ITEM_ERROR}' .. tostring(r) end
end
return out
`;
}

/** A batched script's call arguments: the key count, every item's keys, then every item's arguments. */
export function batchCallArgs(items: readonly BatchItem[], shape: BatchShape): [number, ...string[]] {
  const keys: string[] = [];
  const args: string[] = [];
  for (const it of items) {
    if (it.keys.length !== shape.keys || it.args.length !== shape.args) {
      throw new Error(`an item of this script takes ${shape.keys} keys and ${shape.args} arguments (given ${it.keys.length} and ${it.args.length})`);
    }
    keys.push(...it.keys);
    args.push(...it.args);
  }
  return [keys.length, ...keys, ...args];
}

/** A batched script's replies, an item's error (BATCH_ITEM_ERROR) as that item's Error. */
export function batchReplies<R>(replies: readonly R[]): (R | Error)[] {
  return replies.map((r) => (typeof r === 'string' && r.startsWith(BATCH_ITEM_ERROR) ? new Error(r.slice(BATCH_ITEM_ERROR.length)) : r));
}
