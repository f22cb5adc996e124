/**
 * CephFS file layouts: which RADOS objects hold which bytes of a file.
 * A file's bytes are cut into stripe units; units go round-robin over
 * `stripe_count` objects; when those objects are full (object_size), the next
 * object set starts. Objects are named `<inode hex>.<index as %08x>`.
 */

/** `ceph.file.layout` of a file. */
export interface CephFileLayout {
  readonly stripeUnit: number;
  readonly stripeCount: number;
  readonly objectSize: number;
  /** Data pool name (or id). */
  readonly pool: string;
  readonly poolNamespace: string;
}

/** Parse `stripe_unit=4194304 stripe_count=1 object_size=4194304 pool=cephfs_data [pool_namespace=ns]`. */
export function parseLayout(value: string): CephFileLayout | undefined {
  const fields = new Map<string, string>();
  for (const m of value.matchAll(/(\w+)=(\S+)/g)) fields.set(m[1] ?? '', m[2] ?? '');
  const su = Number(fields.get('stripe_unit'));
  const sc = Number(fields.get('stripe_count'));
  const os = Number(fields.get('object_size'));
  const pool = fields.get('pool');
  if (!(su > 0 && sc > 0 && os > 0) || pool === undefined || os % su !== 0) return undefined;
  return { stripeUnit: su, stripeCount: sc, objectSize: os, pool, poolNamespace: fields.get('pool_namespace') ?? '' };
}

/** The RADOS object name of object `index` of inode `ino`. */
export function objectName(ino: bigint, index: number): string {
  return `${ino.toString(16)}.${index.toString(16).padStart(8, '0')}`;
}

/** The object index holding file byte `offset` (the general striping formula). */
export function objectIndexAt(offset: number, layout: CephFileLayout): number {
  const block = Math.floor(offset / layout.stripeUnit);
  const stripe = Math.floor(block / layout.stripeCount);
  const pos = block % layout.stripeCount;
  const objectSet = Math.floor(stripe / (layout.objectSize / layout.stripeUnit));
  return objectSet * layout.stripeCount + pos;
}

/** A file range covered by one object set and the objects in it that hold bytes. */
export interface ObjectSetRange {
  readonly offset: number;
  readonly length: number;
  /** Object indexes, in the order their first bytes appear. */
  readonly objects: readonly number[];
}

/**
 * The file cut by object set (object_size × stripe_count bytes each). With
 * stripe_count 1 — the default — that is one range per object.
 */
export function objectSets(size: number, layout: CephFileLayout): ObjectSetRange[] {
  const setBytes = layout.objectSize * layout.stripeCount;
  const out: ObjectSetRange[] = [];
  for (let off = 0; off < size; off += setBytes) {
    const length = Math.min(setBytes, size - off);
    const objects: number[] = [];
    // Only the first stripe of a set can touch a new object; later stripes reuse them.
    for (let u = off; u < off + Math.min(length, layout.stripeUnit * layout.stripeCount); u += layout.stripeUnit) {
      const idx = objectIndexAt(u, layout);
      if (!objects.includes(idx)) objects.push(idx);
    }
    out.push({ offset: off, length, objects });
  }
  return out;
}
