import type { Value } from './builder';
import { type Grad, type Ops, raw } from './ops';

/**
 * Reverse-mode differentiation over the tape that `ops` recorded: walks the records backwards from `output`
 * (seeded with `seed`, the gradient of the final scalar with respect to `output`) and returns the gradient of
 * each requested value. Only values that depend on a tapped value were recorded, so the walk never touches
 * the part of the graph before the earliest hook, and no weight gradient is ever formed.
 */
export function gradients(ops: Ops, output: Value, seed: Value, wrt: readonly Value[]): Map<string, Value> {
  const grads = new Map<string, Value>([[output.name, seed]]);
  const accumulate = (value: Value, grad: Value) => {
    const previous = grads.get(value.name);
    grads.set(value.name, previous ? raw.add(ops.b, previous, grad) : grad);
  };

  const records = ops.tape.records;
  for (let i = records.length - 1; i >= 0; i--) {
    const record = records[i];
    const outputGrads: Grad[] = record.outputs.map((v) => grads.get(v.name) ?? null);
    if (outputGrads.every((g) => g === null)) continue;
    const inputGrads = record.vjp(outputGrads);
    record.inputs.forEach((input, k) => {
      const grad = inputGrads[k];
      if (grad && input.requiresGrad) accumulate(input, grad);
    });
  }

  const result = new Map<string, Value>();
  for (const value of wrt) {
    const grad = grads.get(value.name);
    if (!grad) throw new Error(`no gradient reaches ${value.name}: it does not influence the output`);
    result.set(value.name, grad);
  }
  return result;
}
