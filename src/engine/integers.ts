import { InputError } from '../shared/errors';
import type { FieldId } from '../shared/fields';

/**
 * A command-line integer: plain decimal digits only. Number() alone would take "0x10", "1e3", " 8 " and "0b1",
 * which nobody means as a batch size; a flag's value is what it says or refused.
 */
export function parseIntegerFlag(text: string | undefined, field: FieldId, fallback: number, minimum: number, maximum = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  const range = maximum === Number.MAX_SAFE_INTEGER ? `${minimum} or more` : `${minimum} to ${maximum}`;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < minimum || value > maximum) {
    const kind = minimum === 0 ? 'a non-negative' : 'a positive';
    throw InputError.about(field, `expected ${kind} integer, got "${text}" (plain decimal digits, ${range})`);
  }
  return value;
}
