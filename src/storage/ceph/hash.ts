/**
 * Ceph's object-name hashing and PG folding, written from the algorithms in
 * Ceph's `src/common/ceph_hash.cc` and `src/include/rados.h`:
 * - ceph_str_hash_rjenkins: Bob Jenkins' 1996 lookup2 hash (golden-ratio
 *   seed, 12-byte rounds, length folded into c), the default `object_hash`;
 * - ceph_str_hash_linux: the old dcache hash (object_hash 1);
 * - ceph_stable_mod: folds a 32-bit hash onto pg_num so that growing pg_num
 *   splits PGs instead of reshuffling every object.
 * All arithmetic is on unsigned 32-bit values (`>>> 0`).
 */

/** The `object_hash` values of a pool. */
export const CEPH_STR_HASH_LINUX = 1;
/** The default `object_hash`: rjenkins. */
export const CEPH_STR_HASH_RJENKINS = 2;

const textEncoder = new TextEncoder();

/** UTF-8 bytes of a string; ASCII names (the usual case) skip the encoder. */
export function nameBytes(s: string): Uint8Array {
  const n = s.length;
  let ascii = true;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (!ascii) return textEncoder.encode(s);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** ceph_str_hash_rjenkins over bytes. */
export function rjenkins(k: Uint8Array): number {
  const length = k.length;
  let a = 0x9e3779b9;
  let b = a;
  let c = 0;
  let i = 0;
  let len = length;
  while (len >= 12) {
    a = (a + (k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24))) >>> 0;
    b = (b + (k[i + 4]! | (k[i + 5]! << 8) | (k[i + 6]! << 16) | (k[i + 7]! << 24))) >>> 0;
    c = (c + (k[i + 8]! | (k[i + 9]! << 8) | (k[i + 10]! << 16) | (k[i + 11]! << 24))) >>> 0;
    // mix(a, b, c)
    a = (a - b - c) >>> 0; a = (a ^ (c >>> 13)) >>> 0;
    b = (b - c - a) >>> 0; b = (b ^ (a << 8)) >>> 0;
    c = (c - a - b) >>> 0; c = (c ^ (b >>> 13)) >>> 0;
    a = (a - b - c) >>> 0; a = (a ^ (c >>> 12)) >>> 0;
    b = (b - c - a) >>> 0; b = (b ^ (a << 16)) >>> 0;
    c = (c - a - b) >>> 0; c = (c ^ (b >>> 5)) >>> 0;
    a = (a - b - c) >>> 0; a = (a ^ (c >>> 3)) >>> 0;
    b = (b - c - a) >>> 0; b = (b ^ (a << 10)) >>> 0;
    c = (c - a - b) >>> 0; c = (c ^ (b >>> 15)) >>> 0;
    i += 12;
    len -= 12;
  }
  c = (c + length) >>> 0;
  // The C original is a switch whose cases fall through: byte j of the tail is
  // added when len > j. The first byte of c is reserved for the length.
  if (len >= 11) c = (c + (k[i + 10]! << 24)) >>> 0;
  if (len >= 10) c = (c + (k[i + 9]! << 16)) >>> 0;
  if (len >= 9) c = (c + (k[i + 8]! << 8)) >>> 0;
  if (len >= 8) b = (b + (k[i + 7]! << 24)) >>> 0;
  if (len >= 7) b = (b + (k[i + 6]! << 16)) >>> 0;
  if (len >= 6) b = (b + (k[i + 5]! << 8)) >>> 0;
  if (len >= 5) b = (b + k[i + 4]!) >>> 0;
  if (len >= 4) a = (a + (k[i + 3]! << 24)) >>> 0;
  if (len >= 3) a = (a + (k[i + 2]! << 16)) >>> 0;
  if (len >= 2) a = (a + (k[i + 1]! << 8)) >>> 0;
  if (len >= 1) a = (a + k[i]!) >>> 0;
  a = (a - b - c) >>> 0; a = (a ^ (c >>> 13)) >>> 0;
  b = (b - c - a) >>> 0; b = (b ^ (a << 8)) >>> 0;
  c = (c - a - b) >>> 0; c = (c ^ (b >>> 13)) >>> 0;
  a = (a - b - c) >>> 0; a = (a ^ (c >>> 12)) >>> 0;
  b = (b - c - a) >>> 0; b = (b ^ (a << 16)) >>> 0;
  c = (c - a - b) >>> 0; c = (c ^ (b >>> 5)) >>> 0;
  a = (a - b - c) >>> 0; a = (a ^ (c >>> 3)) >>> 0;
  b = (b - c - a) >>> 0; b = (b ^ (a << 10)) >>> 0;
  c = (c - a - b) >>> 0; c = (c ^ (b >>> 15)) >>> 0;
  return c;
}

/** ceph_str_hash_linux over bytes. */
export function linuxDcacheHash(k: Uint8Array): number {
  let hash = 0;
  for (let i = 0; i < k.length; i++) {
    const ch = k[i]!;
    hash = Math.imul((hash + (ch << 4) + (ch >>> 4)) >>> 0, 11) >>> 0;
  }
  return hash;
}

/** ceph_str_hash: by the pool's object_hash. */
export function cephStrHash(objectHash: number, bytes: Uint8Array): number {
  if (objectHash === CEPH_STR_HASH_LINUX) return linuxDcacheHash(bytes);
  if (objectHash === CEPH_STR_HASH_RJENKINS) return rjenkins(bytes);
  throw new RangeError(`unknown ceph object_hash ${objectHash}`);
}

/**
 * The raw placement seed of an object: the hash of its name, or of
 * `<namespace>\x1f<name>` when it lives in a namespace (pg_pool_t::hash_key).
 */
export function objectHash(objectHashKind: number, name: string, namespace = ''): number {
  if (namespace === '') return cephStrHash(objectHashKind, nameBytes(name));
  const ns = nameBytes(namespace);
  const key = nameBytes(name);
  const buf = new Uint8Array(ns.length + 1 + key.length);
  buf.set(ns, 0);
  buf[ns.length] = 0x1f;
  buf.set(key, ns.length + 1);
  return cephStrHash(objectHashKind, buf);
}

/** ceph_stable_mod(x, b, bmask). */
export function stableMod(x: number, b: number, bmask: number): number {
  return (x & bmask) >>> 0 < b ? (x & bmask) >>> 0 : (x & (bmask >>> 1)) >>> 0;
}

/** The mask Ceph derives from pg_num: (1 << cbits(pg_num - 1)) - 1. */
export function pgNumMask(pgNum: number): number {
  const x = pgNum - 1;
  const bits = x <= 0 ? 0 : 32 - Math.clz32(x);
  return bits >= 32 ? 0xffffffff : (1 << bits) - 1;
}
