// Which method computes a run's attributions, and what each costs, said before the run starts.
// Costs are counted in passes through the model over one prompt: a forward pass is 1, a backward pass 2 (it does
// about twice the forward's matrix work), so plain AtP costs 4 per example (clean forward, corrupted forward,
// backward). "auto" takes the most exact method whose cost stays within BUDGET × that of plain AtP.
import { InputError } from '../../shared/errors';
import { fieldRef } from '../../shared/fields';
import type { Method } from '../../shared/result';
import type { MethodRequest } from './options';

export type { Method, MethodRequest };
import type { ModelSpec } from '../model/config';
import { checkPrecisionFor } from './precision';
import { differingPositions, type PreparedExample } from './examples';
import { componentPatchingPasses } from './exact';

/** atp: attribution patching (linear estimate); atpstar: AtP* (QK fix, optional GradDrop); exact: activation patching of every component. */
export const METHODS: readonly Method[] = ['atp', 'atpstar', 'exact'];

/**
 * "auto" takes AtP* only up to this prompt length: the QK fix works on [heads, seq, seq] tensors in every layer, so its
 * time and memory grow with the square of the prompt length, which the memory estimate does not cover yet.
 */
export const ATPSTAR_AUTO_MAX_TOKENS = 128;
export const METHOD_REQUESTS: readonly MethodRequest[] = ['auto', ...METHODS];

/** "auto" stays within this many times the cost of plain AtP. */
export const BUDGET = 4;

export function parseMethod(text: string): MethodRequest {
  if ((METHOD_REQUESTS as readonly string[]).includes(text)) return text as MethodRequest;
  throw InputError.about('method', `unknown method "${text}"; choose one of ${METHOD_REQUESTS.join(', ')}`);
}

export interface Passes {
  forward: number;
  backward: number;
}

export const passCost = (p: Passes) => p.forward + 2 * p.backward;

export interface RunPlan {
  requested: MethodRequest;
  /** AtP*'s GradDrop: L more backward passes (and forward passes: the graph recomputes them). */
  gradDrop: boolean;
  /** What computes the per-component arrays (attributions, heads, positions). */
  method: Method;
  /** The token effects the editor colours by: exact (one forward pass per differing token) or the AtP estimate. */
  tokenEffects: Method;
  /** Components checked against exact patching (k largest + k random per checked map), 0 for none. */
  checks: number;
  /** How many components the checks patch (at most: a map may have fewer cells than 2k). */
  checkComponents: number;
  passes: { attributions: Passes; tokenEffects: Passes; checks: Passes; total: Passes };
  /** Why this plan, in a sentence. */
  reason: string;
}

/** Passes of activation patching of every component in every example (activationPatching.ts runActivationPatching). */
function exactSweepPasses(spec: ModelSpec, prepared: readonly PreparedExample[]): Passes {
  const componentsPerPosition = spec.nHeads + 3; // each head's z, resid_pre, attn_out, mlp_out
  let forward = 0;
  for (const example of prepared) forward += 2 * (1 + spec.nLayers * example.tokens.length * componentsPerPosition);
  return { forward, backward: 0 };
}

/** AtP*: AtP's passes, the QK fix's work counted as one more forward pass; GradDrop runs the graph L more times. */
function atpStarPasses(spec: ModelSpec, n: number, gradDrop: boolean): Passes {
  const runs = gradDrop ? spec.nLayers + 1 : 1;
  return { forward: 2 * n * runs + n, backward: n * runs };
}

export function planRun(
  spec: ModelSpec,
  prepared: readonly PreparedExample[],
  requested: MethodRequest,
  checkK: number,
  gradDrop = false,
  exactTokens = true,
  /** float16 compute: AtP* (float32/float64 only) is refused when asked for and never chosen by auto. */
  float16 = false,
  /** Maps whose cells are checked, k top and k random each (mapChecks.ts checkedMapCount). */
  checkedMaps = 1,
): RunPlan {
  const n = prepared.length;
  if (float16 && (requested === 'atpstar' || gradDrop))
    checkPrecisionFor('float16', `${requested === 'atpstar' ? fieldRef('method', 'atpstar') : fieldRef('gradDrop')} (AtP*)`);
  const atp: Passes = { forward: 2 * n, backward: n };
  const budget = BUDGET * passCost(atp);
  const exact = exactSweepPasses(spec, prepared);
  let differing = 0;
  let longest = 0;
  for (const example of prepared) {
    differing += differingPositions(example).length;
    longest = Math.max(longest, example.tokens.length);
  }
  const tokens: Passes = { forward: differing, backward: 0 };
  if (gradDrop && (requested === 'atp' || requested === 'exact')) {
    throw new InputError(`${fieldRef('gradDrop')} is part of AtP*: use it with ${fieldRef('method', 'atpstar')} (or auto), not ${requested}`, {
      field: 'gradDrop',
    });
  }
  if (gradDrop && spec.nLayers < 2)
    throw new InputError(`${fieldRef('gradDrop')} needs a model of at least 2 layers (this one has ${spec.nLayers})`, { field: 'gradDrop' });

  let method: Method;
  let reason: string;
  if (requested === 'auto' && gradDrop) {
    method = 'atpstar';
    reason = '--grad-drop asks for AtP*';
  } else if (requested === 'auto') {
    const star = atpStarPasses(spec, n, false);
    const exactText = `exact activation patching of every component ${passCost(exact) <= budget ? 'costs' : 'would cost'} ${passCost(exact)} passes`;
    if (passCost(exact) <= budget) {
      method = 'exact';
      reason = `${exactText}, within ${BUDGET}× AtP's ${passCost(atp)}`;
    } else if (!float16 && passCost(star) <= budget && longest <= ATPSTAR_AUTO_MAX_TOKENS) {
      method = 'atpstar';
      reason = `${exactText}, over ${BUDGET}× AtP's ${passCost(atp)}: AtP* estimates`;
    } else if (float16) {
      method = 'atp';
      reason = `${exactText}, over ${BUDGET}× AtP's ${passCost(atp)}; AtP* does not run in float16: AtP estimates`;
    } else {
      method = 'atp';
      reason = `${exactText}, over ${BUDGET}× AtP's ${passCost(atp)}; AtP* is left to --method atpstar past ${ATPSTAR_AUTO_MAX_TOKENS} tokens (its QK fix grows with the square of the prompt): AtP estimates`;
    }
  } else {
    method = requested;
    reason = `--method ${requested}`;
  }
  // Token effects are exact whenever the sweep is, and otherwise when their forward passes fit the budget.
  const tokenEffects: Method = method === 'exact' || (exactTokens && passCost(tokens) <= budget) ? 'exact' : 'atp';
  const attributions = method === 'exact' ? { forward: exact.forward + 2 * n, backward: n } : method === 'atpstar' ? atpStarPasses(spec, n, gradDrop) : atp;
  const tokenPasses = method === 'exact' || tokenEffects === 'atp' ? { forward: 0, backward: 0 } : tokens;
  const checks = method === 'exact' ? 0 : checkK;
  const checkComponents = checks > 0 ? 2 * checks * checkedMaps : 0;
  const checkPasses: Passes = { forward: checks > 0 ? componentPatchingPasses(n, checkComponents) : 0, backward: 0 };
  const total = {
    forward: attributions.forward + tokenPasses.forward + checkPasses.forward,
    backward: attributions.backward + tokenPasses.backward + checkPasses.backward,
  };
  return {
    requested,
    method,
    gradDrop: method === 'atpstar' && gradDrop,
    tokenEffects,
    checks,
    checkComponents,
    passes: { attributions, tokenEffects: tokenPasses, checks: checkPasses, total },
    reason,
  };
}

const passes = (p: Passes) => `${p.forward} forward${p.backward ? ` + ${p.backward} backward` : ''} passes`;

/** One line for the CLI and the progress notification, before the run starts. */
export function describePlan(plan: RunPlan, examples: number): string {
  const what = { exact: 'exact activation patching', atp: 'attribution patching (AtP)', atpstar: `AtP* (QK fix${plan.gradDrop ? ', GradDrop' : ''})` }[
    plan.method
  ];
  const parts = [
    `${what} of ${examples} example${examples === 1 ? '' : 's'}: ${passes(plan.passes.attributions)}`,
    plan.tokenEffects === 'exact'
      ? `exact token effects: ${plan.method === 'exact' ? 'included' : passes(plan.passes.tokenEffects)}`
      : 'token effects: AtP estimates (exact ones would exceed the budget)',
  ];
  if (plan.checks > 0) parts.push(`checks of up to ${plan.checkComponents} components: ${passes(plan.passes.checks)}`);
  return `${parts.join('; ')} — ${passCost(plan.passes.total)} pass-equivalents in all (${plan.reason})`;
}
