import type { DType, GraphBuilder, Value } from './builder';
import { raw } from './ops';
import type { TensorEntry } from '../model/safetensors';
import { InputError } from '../../shared/errors';

const DTYPES: Partial<Record<TensorEntry['dtype'], DType>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

/**
 * Weights as graph initializers whose data stays in the safetensors files (ONNX external data pointing at
 * the tensor's byte range). Half-precision weights are cast to the compute type inside the graph, so there
 * is no conversion step and no second copy on disk.
 */
export class GraphWeights {
  private readonly cache = new Map<string, Value>();
  /** Names (as stored) of the tensors the graph reads: the others are reported, since they hint at a wrong config. */
  readonly used = new Set<string>();

  constructor(
    private readonly b: GraphBuilder,
    private readonly lookup: (name: string) => TensorEntry,
    /** Location of each weight file relative to the folder ONNX Runtime reads external data from (see runtime.prepareGraphDir). */
    private readonly locations: ReadonlyMap<string, string>,
  ) {}

  /** The named weight in the graph's float type, checked against the expected shape. */
  get(name: string, expectedShape?: number[]): Value {
    const cached = this.cache.get(name);
    if (cached) return cached;
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
    const value = raw.cast(this.b, stored, this.b.floatType);
    this.cache.set(name, value);
    return value;
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
