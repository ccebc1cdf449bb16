import type { ModelSpec } from '../model/config';
import { gpt2 } from './gpt2';
import { gptNeo } from './gptNeo';
import { llama } from './llama';
import type { Architecture } from './types';

/** The forward pass of a spec's family: the one decoder (block.ts) with that family's strategy. */
export function architectureOf(spec: ModelSpec): Architecture {
  switch (spec.architecture) {
    case 'gpt2':
      return gpt2(spec);
    case 'gpt_neo':
      return gptNeo(spec);
    case 'llama':
      return llama(spec);
  }
}
