import { createHash } from 'node:crypto';

/** The hash stored in Result.dataset.contentHash: the host computes the same over the editor's text. */
export function contentHash(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}
