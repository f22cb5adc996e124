/**
 * The framework's on/off settings: each has its documented default, takes `true` or `false`, and
 * refuses anything else with an error naming the option.
 */
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/app/config.js';

const base = { master: 'http://m:5050', redis: 'redis://r:6379' };

describe('on/off settings', () => {
  it.each([
    { option: 'dispatch-window', field: 'dispatchWindow', bad: 'sometimes' },
    { option: 'executor-held-starts', field: 'executorHeldStarts', bad: 'often' },
  ] as const)('$option is off unless asked for, and refuses anything but true or false, naming the option', ({ option, field, bad }) => {
    expect(resolveSettings(base)[field]).toBe(false);
    expect(resolveSettings({ ...base, [option]: 'true' })[field]).toBe(true);
    expect(() => resolveSettings({ ...base, [option]: bad })).toThrow(new RegExp(`${option}.*must be true or false`));
  });
});
