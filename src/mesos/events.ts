/**
 * Decoding of scheduler events (JSON, already parsed) into the typed `Event`
 * union. Essential fields are validated; an event type this version does not
 * know becomes `UNKNOWN` (kept, not fatal) because masters add event types.
 */
import { DecodeError, asArray, asNumber, asObject, asString, optional, parseJson } from '../core/decode.js';
import type { Event, EventType } from './types.js';
import {
  decodeId, decodeInverseOffer, decodeMasterInfo, decodeOffer, decodeOperationStatus, decodeRequiredId, decodeTaskStatus,
} from './wire.js';

/** The event types this client decodes (everything else is UNKNOWN). */
export const KNOWN_EVENT_TYPES = [
  'SUBSCRIBED', 'OFFERS', 'INVERSE_OFFERS', 'RESCIND', 'RESCIND_INVERSE_OFFER', 'UPDATE', 'UPDATE_OPERATION_STATUS',
  'MESSAGE', 'FAILURE', 'ERROR', 'HEARTBEAT',
] as const satisfies readonly EventType[];

/** Decode one event. Throws DecodeError when a known event lacks an essential field. */
export function decodeEvent(raw: unknown): Event {
  const o = asObject(raw, 'event');
  const type = asString(o['type'], 'event.type');
  const body = (key: string): ReturnType<typeof asObject> => asObject(o[key], `event.${key}`);
  switch (type) {
    case 'SUBSCRIBED': {
      const s = body('subscribed');
      const hb = optional(s['heartbeat_interval_seconds'], 'event.subscribed.heartbeat_interval_seconds', asNumber);
      const mi = optional(s['master_info'], 'event.subscribed.master_info', decodeMasterInfo);
      return {
        type,
        subscribed: {
          framework_id: decodeRequiredId(s, 'framework_id', 'event.subscribed'),
          ...(hb === undefined ? {} : { heartbeat_interval_seconds: hb }),
          ...(mi ? { master_info: mi } : {}),
        },
      };
    }
    case 'OFFERS': {
      const s = body('offers');
      const offers = optional(s['offers'], 'event.offers.offers', (x, p) => asArray(x, p, decodeOffer)) ?? [];
      const inverse = optional(s['inverse_offers'], 'event.offers.inverse_offers', (x, p) => asArray(x, p, decodeInverseOffer));
      return { type, offers: { offers, ...(inverse ? { inverse_offers: inverse } : {}) } };
    }
    case 'INVERSE_OFFERS': {
      const s = body('inverse_offers');
      return { type, inverse_offers: { inverse_offers: optional(s['inverse_offers'], 'event.inverse_offers.inverse_offers', (x, p) => asArray(x, p, decodeInverseOffer)) ?? [] } };
    }
    case 'RESCIND':
      return { type, rescind: { offer_id: decodeRequiredId(body('rescind'), 'offer_id', 'event.rescind') } };
    case 'RESCIND_INVERSE_OFFER':
      return { type, rescind_inverse_offer: { inverse_offer_id: decodeRequiredId(body('rescind_inverse_offer'), 'inverse_offer_id', 'event.rescind_inverse_offer') } };
    case 'UPDATE':
      return { type, update: { status: decodeTaskStatus(body('update')['status'], 'event.update.status') } };
    case 'UPDATE_OPERATION_STATUS':
      return { type, update_operation_status: { status: decodeOperationStatus(body('update_operation_status')['status'], 'event.update_operation_status.status') } };
    case 'MESSAGE': {
      const m = body('message');
      return {
        type,
        message: {
          agent_id: decodeRequiredId(m, 'agent_id', 'event.message'),
          executor_id: decodeRequiredId(m, 'executor_id', 'event.message'),
          data: asString(m['data'], 'event.message.data'),
        },
      };
    }
    case 'FAILURE': {
      const f = body('failure');
      const agentId = optional(f['agent_id'], 'event.failure.agent_id', decodeId);
      const executorId = optional(f['executor_id'], 'event.failure.executor_id', decodeId);
      const status = optional(f['status'], 'event.failure.status', asNumber);
      return {
        type,
        failure: { ...(agentId ? { agent_id: agentId } : {}), ...(executorId ? { executor_id: executorId } : {}), ...(status === undefined ? {} : { status }) },
      };
    }
    case 'ERROR':
      return { type, error: { message: asString(body('error')['message'], 'event.error.message') } };
    case 'HEARTBEAT':
      return { type };
    default:
      return { type: 'UNKNOWN', originalType: type, raw };
  }
}

/** Parse and decode one event record (UTF-8 JSON text or bytes). */
export function decodeEventRecord(record: string | Uint8Array): Event {
  const text = typeof record === 'string' ? record : Buffer.from(record).toString('utf8');
  return decodeEvent(parseJson(text, 'event'));
}

/** Whether an error is a decoding error (a bad event), as opposed to a fault. */
export function isDecodeError(err: unknown): err is DecodeError {
  return err instanceof DecodeError;
}
