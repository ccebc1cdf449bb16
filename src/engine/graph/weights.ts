import type { DType, FloatType, GraphBuilder, Value } from './builder';
import { raw } from './ops';
import type { TensorEntry } from '../../lib/model/safetensors';
import { InputError } from '../../shared/errors';

const DTYPES: Partial<Record<TensorEntry['dtype'], DType>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

/**
 * Weights as graph initializers whose data stays in the safetensors files (ONNX external data pointing at
 * the tensor's byte range). Half-precision weights are cast to the compute type inside the graph, so there
 * is no conversion step and no second copy on disk. Under float16 compute, what feeds statistics or the metric
 * (norm weights, unembedding rows) is asked for in the wide type, so it is never rounded to float16 on the way.
 */
export class GraphWeights {
  private readonly cache = new Map<string, Value>();
  private readonly storedValues = new Map<string, Value>();
  /** Names (as stored) of the tensors the graph reads: the others are reported, since they hint at a wrong config. */
  readonly used = new Set<string>();

  constructor(
    private readonly b: GraphBuilder,
    private readonly lookup: (name: string) => TensorEntry,
    /** Location of each weight file relative to the folder ONNX Runtime reads external data from (see runtime.prepareGraphDir). */
    private readonly locations: ReadonlyMap<string, string>,
  ) {}

  /** The named weight in the graph's float type (or `dtype`), checked against the expected shape. */
  get(name: string, expectedShape?: number[], dtype: FloatType = this.b.floatType): Value {
    const key = `${name}|${dtype}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const value = raw.cast(this.b, this.stored(name, expectedShape), dtype);
    this.cache.set(key, value);
    return value;
  }

  /** The weight in its stored type (one initializer however many types it is cast to). */
  stored(name: string, expectedShape?: number[]): Value {
    const known = this.storedValues.get(name);
    if (known) return known;
    const entry = this.lookup(name);
    if (expectedShape && (entry.shape.length !== expectedShape.length || entry.shape.some((d, i) => d !== expectedShape[i]))) {
      throw new InputError(
        `${entry.file}: weight "${entry.name}" has shape [${entry.shape.join(', ')}], expected [${expectedShape.join(', ')}] from config.json`,
      );
    }
    const dtype = DTYPES[entry.dtype];
    if (!dtype) throw new InputError(`${entry.file}: weight "${entry.name}" has dtype ${entry.dtype}; supported are F32, F16, BF16, F64`);
    const location = this.locations.get(entry.file);
    if (!location) throw new Error(`no graph location for ${entry.file}`);
    this.used.add(entry.name);
    const stored = this.b.external({ name: entry.name, dtype, shape: entry.shape, location, offset: entry.offset, length: entry.length });
    this.storedValues.set(name, stored);
    return stored;
  }

  has(name: string): boolean {
    try {
      this.lookup(name);
      return true;
    } catch {
      return false;
    }
  }
}
