// Which method computes a run's attributions, and what each costs, said before the run starts.
// Costs are counted in passes through the model over one prompt: a forward pass is 1, a backward pass 2 (it does
// about twice the forward's matrix work), so plain AtP costs 4 per example (clean forward, corrupted forward,
// backward). "auto" takes the most exact method whose cost stays within BUDGET × that of plain AtP.
import { InputError } from './errors';
import type { Method } from './result';

export type { Method };
import type { ModelSpec } from './model/config';
import { differingPositions, type PreparedExample } from './runSupport';
import { componentPatchingPasses } from './exactPatching';

/** atp: attribution patching (linear estimate); exact: activation patching of every component. */
export const METHODS: readonly Method[] = ['atp', 'exact'];
export type MethodRequest = Method | 'auto';
export const METHOD_REQUESTS: readonly MethodRequest[] = ['auto', ...METHODS];

/** "auto" stays within this many times the cost of plain AtP. */
export const BUDGET = 4;

export function parseMethod(text: string): MethodRequest {
  if ((METHOD_REQUESTS as readonly string[]).includes(text)) return text as MethodRequest;
  throw new InputError(`--method: unknown method "${text}"; choose one of ${METHOD_REQUESTS.join(', ')}`);
}

export interface Passes {
  forward: number;
  backward: number;
}

export const passCost = (p: Passes) => p.forward + 2 * p.backward;

export interface RunPlan {
  requested: MethodRequest;
  /** What computes the per-component arrays (attributions, heads, positions). */
  method: Method;
  /** The token effects the editor colours by: exact (one forward pass per differing token) or the AtP estimate. */
  tokenEffects: Method;
  /** Components checked against exact patching (k largest + k random), 0 for none. */
  checks: number;
  passes: { attributions: Passes; tokenEffects: Passes; checks: Passes; total: Passes };
  /** Why this plan, in a sentence. */
  reason: string;
}

/** Passes of activation patching of every component in every example (patching.ts runActivationPatching). */
function exactSweepPasses(spec: ModelSpec, prepared: readonly PreparedExample[]): Passes {
  const componentsPerPosition = spec.nHeads + 3; // each head's z, resid_pre, attn_out, mlp_out
  let forward = 0;
  for (const example of prepared) forward += 2 * (1 + spec.nLayers * example.tokens.length * componentsPerPosition);
  return { forward, backward: 0 };
}

export function planRun(spec: ModelSpec, prepared: readonly PreparedExample[], requested: MethodRequest, checkK: number): RunPlan {
  const n = prepared.length;
  const atp: Passes = { forward: 2 * n, backward: n };
  const budget = BUDGET * passCost(atp);
  const exact = exactSweepPasses(spec, prepared);
  let differing = 0;
  for (const example of prepared) differing += differingPositions(example).length;
  const tokens: Passes = { forward: differing, backward: 0 };

  let method: Method;
  let reason: string;
  if (requested === 'auto') {
    method = passCost(exact) <= budget ? 'exact' : 'atp';
    reason =
      method === 'exact'
        ? `exact activation patching of every component costs ${passCost(exact)} passes, within ${BUDGET}× AtP's ${passCost(atp)}`
        : `exact activation patching of every component would cost ${passCost(exact)} passes, over ${BUDGET}× AtP's ${passCost(atp)}: attribution patching estimates`;
  } else {
    method = requested;
    reason = `--method ${requested}`;
  }
  // Token effects are exact whenever the sweep is, and otherwise when their forward passes fit the budget.
  const tokenEffects: Method = method === 'exact' || passCost(tokens) <= budget ? 'exact' : 'atp';
  const attributions = method === 'exact' ? { forward: exact.forward + 2 * n, backward: n } : atp;
  const tokenPasses = method === 'exact' || tokenEffects === 'atp' ? { forward: 0, backward: 0 } : tokens;
  const checks = method === 'exact' ? 0 : checkK;
  const checkPasses: Passes = { forward: checks > 0 ? componentPatchingPasses(n, 2 * checks) : 0, backward: 0 };
  const total = {
    forward: attributions.forward + tokenPasses.forward + checkPasses.forward,
    backward: attributions.backward + tokenPasses.backward + checkPasses.backward,
  };
  return { requested, method, tokenEffects, checks, passes: { attributions, tokenEffects: tokenPasses, checks: checkPasses, total }, reason };
}

const passes = (p: Passes) => `${p.forward} forward${p.backward ? ` + ${p.backward} backward` : ''} passes`;

/** One line for the CLI and the progress notification, before the run starts. */
export function describePlan(plan: RunPlan, examples: number): string {
  const parts = [
    `${plan.method === 'exact' ? 'exact activation patching' : 'attribution patching (AtP)'} of ${examples} example${examples === 1 ? '' : 's'}: ${passes(plan.passes.attributions)}`,
    plan.tokenEffects === 'exact'
      ? `exact token effects: ${plan.method === 'exact' ? 'included' : passes(plan.passes.tokenEffects)}`
      : 'token effects: AtP estimates (exact ones would exceed the budget)',
  ];
  if (plan.checks > 0) parts.push(`checks of ${2 * plan.checks} components: ${passes(plan.passes.checks)}`);
  return `${parts.join('; ')} — ${passCost(plan.passes.total)} pass-equivalents in all (${plan.reason})`;
}
