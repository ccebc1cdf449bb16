// Prompts that cannot fit the model are refused before they are tokenized: a 5 MB line used to overflow the
// stack in the offset alignment, and a 50 MB one to exhaust memory, long before the position check ran.
import type { ModelTokenizer } from '../../engine/model/tokenizer';

export type LengthTokenizer = Pick<ModelTokenizer, 'minimumTokenCount'>;

/** Why `text` cannot fit `maxPositions` positions (a sentence), or undefined when it may. Never tokenizes. */
export function promptTooLong(text: string, tokenizer: LengthTokenizer, maxPositions: number): string | undefined {
  const minimum = tokenizer.minimumTokenCount(text);
  if (minimum <= maxPositions) return undefined;
  return `is ${text.length} characters long, so at least ${minimum} tokens: more than the model's ${maxPositions} positions`;
}
