// Token effects: the per-token values the editor colours by, exact (one forward pass per differing token, exact.ts
// patchTokens) or the AtP estimate of resid_pre at layer 0.
import type { LoadedModel } from '../model/load';
import type { ExampleAttributions, TokenScores } from '../../shared/result';
import type { RunOptions } from './options';
import { differingPositions, type PreparedExample } from './examples';
import { patchTokens, type TokenPassGraph } from './exact';
import type { RunPlan } from './methods';

/**
 * The per-token values the editor colours by (see TokenScores): at each differing position the exact effect of
 * patching that token (one forward pass each) or, when that would exceed the budget, the AtP estimate of
 * resid_pre at layer 0 there; 0 (exactly) wherever the two prompts have the same token.
 */
export async function computeTokenScores(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  plan: RunPlan,
  tokenGraph: TokenPassGraph | undefined,
  attributions: readonly ExampleAttributions[],
  baselines: { cleanLds: readonly number[]; corruptedLds: readonly number[]; scale: number },
  options: RunOptions,
): Promise<TokenScores[]> {
  const method = plan.tokenEffects;
  // After an exact sweep, resid_pre at layer 0 already is the exact token patch: no extra pass.
  // Through the run's own session while the passes are short: no second session to build and hold (tokenPassGraph).
  const patched = tokenGraph !== undefined ? await patchTokens(model, prepared, options, tokenGraph) : undefined;
  return prepared.map((example, i) => {
    const values = new Array<number>(example.tokens.length).fill(0);
    const exact = new Array<boolean>(example.tokens.length).fill(true);
    differingPositions(example).forEach((pos, slot) => {
      if (patched) values[pos] = (patched[i][slot] - baselines.corruptedLds[i]) * baselines.scale;
      else values[pos] = attributions[i].residPre[0][pos];
      exact[pos] = method === 'exact';
    });
    return { kind: 'token-patch', method, values, exact, joint: (baselines.cleanLds[i] - baselines.corruptedLds[i]) * baselines.scale };
  });
}
