/**
 * Which agents the local cluster runs: N identical agents spread over R
 * racks, or a heterogeneous list from a YAML/JSON topology file:
 *
 * ```yaml
 * agents:
 *   - hostname: agent-1      # optional, default agent-<n>
 *     rack: r1               # optional, default r<(n-1) % racks + 1>
 *     resources: "cpus:4;mem:8192;disk:20480;ports:[31000-32000]"
 *     attributes: { zone: a }
 * ```
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { asArray, asObject, asString, isObject, optional } from '../core/decode.js';
import { invalidField } from '../core/errors.js';
import type { AgentSpec } from './agent/agent.js';
import { parseResourceString } from './resources.js';

/** Default resources of one agent. */
export const DEFAULT_AGENT_RESOURCES = 'cpus:2;mem:4096;disk:20480;ports:[31000-32000]';

function resources(text: string, field: string): AgentSpec['resources'] {
  try {
    return parseResourceString(text);
  } catch (err) {
    throw invalidField(field, err instanceof Error ? err.message : String(err));
  }
}

/** N uniform agents over R racks. */
export function uniformTopology(agents: number, racks: number, resourceText = DEFAULT_AGENT_RESOURCES): AgentSpec[] {
  if (!Number.isInteger(agents) || agents < 1) throw invalidField('agents', `must be an integer >= 1, got ${agents}`);
  if (!Number.isInteger(racks) || racks < 1) throw invalidField('racks', `must be an integer >= 1, got ${racks}`);
  const res = resources(resourceText, 'resources');
  return Array.from({ length: agents }, (_, i) => ({ hostname: `agent-${i + 1}`, rack: `r${(i % racks) + 1}`, resources: res, attributes: {} }));
}

/** Agents from a YAML or JSON topology file. */
export function topologyFromFile(path: string, racks: number, defaultResources = DEFAULT_AGENT_RESOURCES): AgentSpec[] {
  const raw: unknown = parseYaml(readFileSync(path, 'utf8'));
  const list = Array.isArray(raw) ? raw : isObject(raw) ? raw['agents'] : undefined;
  const entries = asArray(list, 'topology.agents', asObject);
  if (entries.length === 0) throw invalidField('topology.agents', 'must list at least one agent');
  const seen = new Set<string>();
  return entries.map((e, i) => {
    const hostname = optional(e['hostname'], `agents[${i}].hostname`, asString) ?? `agent-${i + 1}`;
    if (seen.has(hostname)) throw invalidField(`agents[${i}].hostname`, `duplicate hostname '${hostname}'`);
    seen.add(hostname);
    const attrs = isObject(e['attributes']) ? e['attributes'] : {};
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(attrs)) attributes[k] = String(v);
    return {
      hostname,
      rack: optional(e['rack'], `agents[${i}].rack`, asString) ?? `r${(i % racks) + 1}`,
      resources: resources(optional(e['resources'], `agents[${i}].resources`, asString) ?? defaultResources, `agents[${i}].resources`),
      attributes,
    };
  });
}
