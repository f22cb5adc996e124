/**
 * Fair share between tenants behind a small Sorter interface, after Mesos'
 * allocator sorters: clients are kept in order of their share and re-sorted
 * lazily, only when an allocation changed since the last sort. The default is
 * weighted DRF: a tenant's share is its dominant share divided by its weight,
 * so a tenant of weight 2 may hold twice what a tenant of weight 1 holds.
 */
import { dominantShare, type ResourceVector, ZERO } from '../../core/resources.js';

/** Orders clients (tenants) by how much of the cluster they hold, least first. */
export interface Sorter {
  /** Register a client (idempotent; a second call updates the weight). */
  add(client: string, weight: number): void;
  /** Whether the client is registered. */
  has(client: string): boolean;
  /** Charge resources to a client. */
  allocated(client: string, resources: ResourceVector): void;
  /** Give resources back. */
  unallocated(client: string, resources: ResourceVector): void;
  /** The total the shares are measured against. */
  setTotal(total: ResourceVector): void;
  /** The client's current (weighted) share. */
  share(client: string): number;
  /** Clients, least share first (ties by name, so the order is deterministic). */
  sort(): readonly string[];
}

interface Client {
  readonly name: string;
  weight: number;
  // Updated in place: a pass charges every placement, so no allocation per charge.
  readonly usage: { cpus: number; mem: number; disk: number };
  share: number;
}

/** Weighted Dominant Resource Fairness. */
export class DrfSorter implements Sorter {
  private readonly clients = new Map<string, Client>();
  private order: Client[] = [];
  private names: string[] = [];
  private dirty = false;
  private total: ResourceVector = ZERO;

  add(client: string, weight: number): void {
    const c = this.clients.get(client);
    if (c) {
      c.weight = weight > 0 ? weight : 1;
      this.refresh(c);
      return;
    }
    const fresh: Client = { name: client, weight: weight > 0 ? weight : 1, usage: { cpus: 0, mem: 0, disk: 0 }, share: 0 };
    this.clients.set(client, fresh);
    this.order.push(fresh);
    this.dirty = true;
  }

  has(client: string): boolean {
    return this.clients.has(client);
  }

  allocated(client: string, resources: ResourceVector): void {
    const c = this.clients.get(client);
    if (!c) return;
    c.usage.cpus += resources.cpus;
    c.usage.mem += resources.mem;
    c.usage.disk += resources.disk;
    this.refresh(c);
  }

  unallocated(client: string, resources: ResourceVector): void {
    const c = this.clients.get(client);
    if (!c) return;
    c.usage.cpus -= resources.cpus;
    c.usage.mem -= resources.mem;
    c.usage.disk -= resources.disk;
    this.refresh(c);
  }

  setTotal(total: ResourceVector): void {
    this.total = total;
    for (const c of this.clients.values()) c.share = dominantShare(c.usage, total) / c.weight;
    this.dirty = true;
  }

  share(client: string): number {
    return this.clients.get(client)?.share ?? 0;
  }

  sort(): readonly string[] {
    if (this.dirty) {
      this.order.sort((a, b) => a.share - b.share || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      this.names = this.order.map((c) => c.name);
      this.dirty = false;
    }
    return this.names;
  }

  private refresh(c: Client): void {
    c.share = dominantShare(c.usage, this.total) / c.weight;
    this.dirty = true;
  }
}
