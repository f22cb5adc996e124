/**
 * Requests pinned to one agent (`agent:` on a volume or a reservation) are
 * checked against the agents the framework knows, at the edge, so a request
 * that could never be placed is refused (400 UNKNOWN_AGENT) instead of
 * waiting for ever. Both the HTTP and the gRPC API use this one check.
 */
import { LocusError } from '../core/errors.js';

/** An agent as the framework knows it. */
export interface KnownAgentName {
  readonly id: string;
  readonly hostname: string;
}

/** The agents the framework knows (the local cluster's, or those seen in offers). */
export interface AgentDirectory {
  /**
   * Every agent known, or undefined while the framework cannot tell (no agent
   * seen yet): then nothing is refused, and a pinned request waits for its agent.
   */
  known(): readonly KnownAgentName[] | undefined;
}

/** How many agent names an error lists before it says "and N more". */
const LISTED = 10;

/** Refuse `agent` (a hostname or an agent id) when the directory knows its agents and it is not one. */
export function checkPinnedAgent(agent: string | undefined, directory: AgentDirectory | undefined, field = 'agent'): void {
  if (agent === undefined || directory === undefined) return;
  const known = directory.known();
  if (known === undefined || known.length === 0) return;
  if (known.some((a) => a.hostname === agent || a.id === agent)) return;
  const names = [...new Set(known.map((a) => a.hostname))].sort();
  const shown = names.slice(0, LISTED).join(', ') + (names.length > LISTED ? ` and ${names.length - LISTED} more` : '');
  throw new LocusError('UNKNOWN_AGENT', `${field}: no agent '${agent}' in this cluster (known: ${shown})`, { field, details: { agent } });
}
