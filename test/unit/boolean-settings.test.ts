/**
 * The framework's on/off settings: each has its documented default, takes `true` or `false` (and executor-held-starts `auto`), and
 * refuses anything else with an error naming the option.
 */
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/app/config.js';

const base = { master: 'http://m:5050', redis: 'redis://r:6379' };

describe('on/off settings', () => {
  it.each([
    { option: 'dispatch-window', field: 'dispatchWindow', bad: 'sometimes' },
  ] as const)('$option is on unless turned off, and refuses anything but true or false, naming the option', ({ option, field, bad }) => {
    expect(resolveSettings(base)[field]).toBe(true);
    expect(resolveSettings({ ...base, [option]: 'false' })[field]).toBe(false);
    expect(resolveSettings({ ...base, [option]: 'true' })[field]).toBe(true);
    expect(() => resolveSettings({ ...base, [option]: bad })).toThrow(new RegExp(`${option}.*must be true or false`));
  });

  it('executor-held-starts is auto unless set, takes true, false or auto, and refuses anything else, naming the option', () => {
    expect(resolveSettings(base).executorHeldStarts).toBe('auto');
    expect(resolveSettings({ ...base, 'executor-held-starts': 'true' }).executorHeldStarts).toBe(true);
    expect(resolveSettings({ ...base, 'executor-held-starts': 'false' }).executorHeldStarts).toBe(false);
    expect(resolveSettings({ ...base, 'executor-held-starts': 'auto' }).executorHeldStarts).toBe('auto');
    expect(() => resolveSettings({ ...base, 'executor-held-starts': 'often' })).toThrow(/executor-held-starts.*must be true, false or auto/);
  });
});
