// Checks one claim against one Result: pure (no run, no file), so the CLI, the worker and the extension host share
// it, and a current Result is checked again without rerunning the model.
import { type Result, topHeads } from '../../shared/result';
import { faithfulnessAt } from '../../shared/circuit';
import { type Bound, type Claim, describeBound, describeClaim, type HeadPattern } from './schema';
import { signedFixed } from '../../shared/colorScale';
import { agreementsOf } from '../../shared/checkAgreement';

/**
 * passed / failed: the Result settles the claim. unverified: it cannot (the Result lacks what the claim needs, e.g.
 * a circuit, or its values are estimates where the claim is about exact effects); counted as not passed.
 */
export type ClaimStatus = 'passed' | 'failed' | 'unverified';

export interface ClaimOutcome {
  status: ClaimStatus;
  expected: string;
  actual: string;
}

const headName = (h: { layer: number; head: number }) => `L${h.layer}H${h.head}`;

export function satisfies(value: number, bound: Bound): boolean {
  return (
    (bound.greaterThan === undefined || value > bound.greaterThan) &&
    (bound.atLeast === undefined || value >= bound.atLeast) &&
    (bound.lessThan === undefined || value < bound.lessThan) &&
    (bound.atMost === undefined || value <= bound.atMost)
  );
}

export function evaluateClaim(claim: Claim, result: Result): ClaimOutcome {
  const expected = describeClaim(claim);
  const unverified = (actual: string): ClaimOutcome => ({ status: 'unverified', expected, actual });
  const verdict = (ok: boolean, actual: string): ClaimOutcome => ({ status: ok ? 'passed' : 'failed', expected, actual });
  if (result.shard) return unverified(`a shard's values are raw: merge the shards (atp merge) and test the merged Result`);

  switch (claim.kind) {
    case 'top_heads':
    case 'not_in_top': {
      const { layers, heads } = result.model;
      const patterns = claim.kind === 'top_heads' ? [...claim.include, ...claim.exclude] : claim.heads;
      const outside = patterns.find((p) => p.layer >= layers || (p.head !== null && p.head >= heads));
      if (outside) return unverified(`${outside.text} is not a head of this model (${layers} layers × ${heads} heads)`);
      const top = topHeads(result, claim.k);
      const inTop = new Set(top.map(headName));
      const expand = (p: HeadPattern) => (p.head === null ? Array.from({ length: heads }, (_, h) => `L${p.layer}H${h}`) : [p.text]);
      const missing = claim.kind === 'top_heads' ? claim.include.flatMap(expand).filter((h) => !inTop.has(h)) : [];
      const excluded = claim.kind === 'top_heads' ? claim.exclude : claim.heads;
      const intruders = excluded.flatMap(expand).filter((h) => inTop.has(h));
      const problems = [
        missing.length > 0 ? `missing ${missing.join(', ')}` : '',
        intruders.length > 0 ? `${intruders.join(', ')} in the top ${claim.k}` : '',
      ].filter(Boolean);
      const by = result.methods?.heads === 'exact' ? 'exact effect' : 'attribution';
      return verdict(
        problems.length === 0,
        `top ${claim.k} by |${by}|: ${top.map((h) => `${headName(h)} ${signedFixed(h.value)}`).join(', ')}${problems.length > 0 ? ` (${problems.join('; ')})` : ''}`,
      );
    }
    case 'baselines': {
      const { cleanLogitDiff: clean, corruptedLogitDiff: corrupted } = result.metric;
      const parts: Array<[string, number, Bound | undefined]> = [
        ['clean logit diff', clean, claim.clean],
        ['corrupted logit diff', corrupted, claim.corrupted],
        ['clean − corrupted', clean - corrupted, claim.gap],
      ];
      const checked = parts.filter(([, , bound]) => bound !== undefined);
      const failing = checked.filter(([, value, bound]) => !satisfies(value, bound!));
      return verdict(
        failing.length === 0,
        checked.map(([label, value, bound]) => `${label} ${signedFixed(value)}${satisfies(value, bound!) ? '' : ` (not ${describeBound(bound!)})`}`).join('; '),
      );
    }
    case 'agreement': {
      const checks = result.checks;
      if (!checks || checks.items.length === 0) {
        return unverified('the Result has no checks against exact patching: run with checks (atp test checks every head; atp patch --check K)');
      }
      // Exact against exact agrees by construction: a claim that cannot fail says nothing about AtP.
      if (result.methods?.heads === 'exact')
        return unverified('the head map is exact patching itself (method exact): run the claims with method atp or atpstar');
      if (checks.items.length < 3) return unverified(`only ${checks.items.length} checked components: a correlation needs at least 3`);
      const over = checks.candidates.includes('positions') ? `${checks.items.length} checked heads and positions` : `${checks.items.length} heads`;
      const failing: string[] = [];
      const parts: string[] = [];
      for (const [label, value, least] of [
        ['Spearman', checks.spearman, claim.spearman],
        ['Pearson', checks.pearson, claim.pearson],
      ] as const) {
        if (least === undefined) continue;
        parts.push(`${label} ${Number.isFinite(value) ? value.toFixed(3) : 'undefined (constant values)'}`);
        if (!(value >= least)) failing.push(label);
      }
      if (claim.maxError !== undefined) {
        // The head map's own checked cells: the error of the map the claim is about.
        const heads = agreementsOf(checks).find((agreement) => agreement.map === 'heads');
        if (!heads) return unverified('the checks have no head: run the claims again (atp test checks every head)');
        const error = heads.maxError;
        parts.push(
          error === null
            ? 'max error undefined (every checked exact value is 0)'
            : `max error ${error.toFixed(3)} of the largest exact (top head ${heads.topRatio === null ? 'exact 0' : `${heads.topRatio.toFixed(2)}× exact`})`,
        );
        if (!(error !== null && error <= claim.maxError)) failing.push('max error');
      }
      return verdict(failing.length === 0, `${parts.join(', ')} over ${over}`);
    }
    case 'token_score': {
      let total = 0;
      let count = 0;
      const offenders: string[] = [];
      for (const example of result.examples) {
        const scores = example.tokenScores;
        if (!scores) return unverified(`the Result has no token scores (an @1 result): rerun it`);
        for (let p = 0; p < example.cleanIds.length; p++) {
          if (p < example.corruptedIds.length && example.cleanIds[p] === example.corruptedIds[p]) continue;
          if (!scores.exact[p]) {
            return unverified(`the changed token's score on line ${example.line} is an AtP estimate, not exact (the run skipped exact token effects)`);
          }
          const value = scores.values[p];
          total += value;
          count += 1;
          if (claim.each && !satisfies(value, claim.each))
            offenders.push(`line ${example.line} ${JSON.stringify(example.tokens[p]?.text ?? '')} ${signedFixed(value)}`);
        }
      }
      if (count === 0) return unverified('no token differs between the clean and corrupted prompts');
      const parts = [`${count} changed tokens, summed ${signedFixed(total)}`];
      if (offenders.length > 0)
        parts.push(`${offenders.length} not ${describeBound(claim.each!)}: ${offenders.slice(0, 5).join(', ')}${offenders.length > 5 ? ', …' : ''}`);
      return verdict((claim.total === undefined || satisfies(total, claim.total)) && offenders.length === 0, parts.join('; '));
    }
    case 'faithfulness': {
      const circuit = result.circuit;
      if (!circuit) return unverified('needs a circuit run (atp circuit): this Result has no circuit');
      if (!circuit.curve) return unverified('the circuit has no faithfulness curve: rerun atp circuit with its curve');
      const largest = circuit.curve.edges[circuit.curve.edges.length - 1] ?? 0;
      if (claim.edges > largest) return unverified(`the graph has ${largest} edges, fewer than ${claim.edges}`);
      const value = faithfulnessAt(circuit.curve, claim.edges);
      const measured = circuit.curve.edges.includes(claim.edges) ? 'measured' : 'interpolated between measured sizes';
      return verdict(value >= claim.atLeast, `faithfulness ${value.toFixed(3)} at ${claim.edges} edges (${measured}, ${circuit.method})`);
    }
  }
}
