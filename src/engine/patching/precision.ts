// A run's precision: the --precision flag, and what runs in float16 (mixed precision, see GraphBuilder.wideType).
import { InputError } from '../../shared/errors';
import { type Precision, PRECISIONS } from '../../shared/result';

export type { Precision };

/** The --precision flag's value (default float32). */
export function parsePrecision(text: string | undefined): Precision {
  if (text === undefined) return 'float32';
  if ((PRECISIONS as readonly string[]).includes(text)) return text as Precision;
  throw InputError.about('precision', `expected ${PRECISIONS.join(', ')}, got "${text}"`);
}

/** Refuses float16 for what does not run in it (AtP*, circuits), naming the field and the way out. */
export function checkPrecisionFor(precision: Precision | undefined, what: string): void {
  if (precision === 'float16') throw InputError.about('precision', `float16 runs AtP and exact patching only, not ${what}; use float32 for it`);
}
