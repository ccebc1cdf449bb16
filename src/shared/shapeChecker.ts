// Shape checks of a parsed JSON file with messages that name the file and the field; used by parseResult and by
// the checks of the Result's parts that live beside their types (checkCircuit).
import { InputError } from './errors';

/** Shape checks with messages that name the file and the field. */
export class ShapeChecker {
  constructor(private readonly file: string) {}

  fail(field: string, expected: string): never {
    throw new InputError(`${this.file}: field "${field}" must be ${expected}`);
  }

  /** A field whose shape is right but whose value is not (an unknown node, an out-of-order index): says why. */
  reject(field: string, why: string): never {
    throw new InputError(`${this.file}: field "${field}": ${why}`);
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(field, 'an object');
    return value as Record<string, unknown>;
  }

  string(value: unknown, field: string): void {
    if (typeof value !== 'string') this.fail(field, 'a string');
  }

  /** Finite only: JSON.parse reads 1e999 as Infinity, which no view, export or comparison can use. */
  number(value: unknown, field: string): void {
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(field, 'a finite number');
  }

  integer(value: unknown, field: string): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) this.fail(field, 'a non-negative integer');
    return value;
  }

  /**
   * An array nested `depth` deep whose leaves are finite numbers, optionally with a given outer length, and with
   * `lengths` the length of every level (undefined: any): a wrong length names the first row that has it.
   */
  numbers(value: unknown, field: string, depth: number, outerLength?: number, lengths?: ReadonlyArray<number | undefined>, meaning?: string): void {
    const expected = `an array of ${'arrays of '.repeat(depth - 1)}finite numbers`;
    const check = (item: unknown, level: number): boolean =>
      level === 0 ? typeof item === 'number' && Number.isFinite(item) : Array.isArray(item) && item.every((child) => check(child, level - 1));
    if (!check(value, depth)) this.fail(field, expected);
    if (outerLength !== undefined && (value as unknown[]).length !== outerLength) this.fail(field, `${expected} with ${outerLength} rows (one per layer)`);
    if (lengths === undefined) return;
    const shape = `shape [${lengths.map((n) => n ?? '·').join(', ')}]${meaning ? ` (${meaning})` : ''}`;
    const walk = (item: unknown, level: number, at: string): void => {
      if (level === depth) return;
      const rows = item as unknown[];
      const want = lengths[level];
      if (want !== undefined && rows.length !== want) this.reject(`${field}${at}`, `has ${rows.length} entries, expected ${want} (${field} has ${shape})`);
      rows.forEach((row, i) => walk(row, level + 1, `${at}[${i}]`));
    };
    walk(value, 0, '');
  }

  method(value: unknown, field: string): void {
    if (value !== 'atp' && value !== 'atpstar' && value !== 'exact') this.fail(field, '"atp", "atpstar" or "exact"');
  }

  array(value: unknown, field: string): unknown[] {
    if (!Array.isArray(value)) this.fail(field, 'an array');
    return value;
  }
}
