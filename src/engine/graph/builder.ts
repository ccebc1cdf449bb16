import { onnx } from 'onnx-proto';

/** A tensor dimension: a fixed size, or a symbolic one (e.g. 'batch', 'seq') that is only known at run time. */
export type Dim = number | string;

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'bool';

/** A named tensor in the graph, with the shape as far as it is known when the graph is built. */
export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[];
  /** True when the value depends on a tensor we differentiate with respect to (see autodiff.ts). */
  readonly requiresGrad: boolean;
}

export type AttributeValue =
  | number
  | number[]
  | string
  | { float: number }
  | { floats: number[] }
  /** A one-element tensor, e.g. ConstantOfShape's fill value. */
  | { scalarTensor: number; dtype: 'float16' | 'float32' | 'float64' | 'int64' };

interface NodeSpec {
  opType: string;
  /** '' (ONNX) or 'com.microsoft' (ONNX Runtime's contrib ops: fused kernels with no standard equivalent at our opset). */
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttributeValue>;
}

/** A weight stored outside the model file: a byte range inside another file (e.g. a .safetensors shard). */
export interface ExternalTensor {
  name: string;
  dtype: DType;
  shape: number[];
  /** File name relative to the directory the .onnx file will be written to. */
  location: string;
  offset: number;
  length: number;
}

const ONNX_TYPES: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  float16: onnx.TensorProto.DataType.FLOAT16,
  bfloat16: onnx.TensorProto.DataType.BFLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

export function onnxType(dtype: DType): number {
  return ONNX_TYPES[dtype];
}

/** The float types a graph computes in: float16 is mixed precision, see GraphBuilder.wideType. */
export type FloatType = 'float16' | 'float32' | 'float64';

/**
 * IEEE 754 binary16 bits of x, rounded to nearest even (ONNX stores float16 tensors as these bits in int32_data).
 * Every step is exact in double precision (scaling by powers of two, a difference within [1, 2)); beyond the largest
 * float16 (65504) plus half an ulp the result is ±infinity, as a float16 cast would give.
 */
export function float16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  // Subnormal in units of 2^-24 (a count of 0x400 is the smallest normal, which the same bits encode).
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24);
  let exponent = Math.floor(Math.log2(a));
  if (2 ** exponent > a) exponent--;
  else if (2 ** (exponent + 1) <= a) exponent++;
  // A mantissa rounded up to 1024 carries into the exponent, as it should.
  return sign | (((exponent + 15) << 10) + roundHalfEven((a / 2 ** exponent - 1) * 1024));
}

function roundHalfEven(v: number): number {
  const floor = Math.floor(v);
  const rest = v - floor;
  if (rest !== 0.5) return rest < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

/**
 * Builds an ONNX graph node by node. It knows nothing about differentiation: ops.ts records what autodiff
 * needs on top of it. Shapes are tracked symbolically so that ops can decide statically which axes broadcast.
 */
export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly inlineInitializers: onnx.ITensorProto[] = [];
  private readonly externalInitializers: ExternalTensor[] = [];
  private readonly graphInputs: Value[] = [];
  private readonly graphOutputs: Value[] = [];
  private readonly usedNames = new Set<string>();
  private readonly constantCache = new Map<string, Value>();
  private readonly derivedCache = new Map<string, Value>();
  /** Symbolic dims of the graph's inputs ('batch', 'seq') and globalDim's: the same size wherever they appear. */
  private readonly inputDims = new Set<string>();
  private counter = 0;

  /**
   * The floating-point type weights and activations are in: float32 in the product, float64 in gradient tests,
   * float16 for mixed precision on GPUs (statistics, the metric and the attributions then run in wideType).
   */
  constructor(readonly floatType: FloatType = 'float32') {}

  /**
   * The type of what needs range or accumulation: norms' statistics, softmax, the metric, attributions, and the
   * graph's float inputs. float32 under float16; otherwise the float type itself (so those graphs have no casts).
   */
  get wideType(): 'float32' | 'float64' {
    return this.floatType === 'float16' ? 'float32' : this.floatType;
  }

  uniqueName(hint: string): string {
    let name = hint;
    while (this.usedNames.has(name)) name = `${hint}_${++this.counter}`;
    this.usedNames.add(name);
    return name;
  }

  input(name: string, dtype: DType, shape: Dim[], requiresGrad = false): Value {
    const value: Value = { name: this.uniqueName(name), dtype, shape, requiresGrad };
    for (const d of shape) if (typeof d === 'string') this.inputDims.add(d);
    this.graphInputs.push(value);
    return value;
  }

  /** A symbolic dim derived inside the graph that is the same size wherever it appears (e.g. a shared prefix's suffix length). */
  globalDim(name: string): string {
    this.inputDims.add(name);
    return name;
  }

  /** True when every dim is a fixed size or one of the inputs' symbolic dims, so equal shapes are equal at run time. */
  hasGlobalDims(shape: readonly Dim[]): boolean {
    return shape.every((d) => typeof d === 'number' || this.inputDims.has(d));
  }

  /**
   * A value computed once per graph and shared by every later use under the same key (e.g. the shape
   * [batch, seq, n] that each linear layer's output is reshaped to). The key must determine the value.
   */
  shared(key: string, make: () => Value): Value {
    let value = this.derivedCache.get(key);
    if (!value) this.derivedCache.set(key, (value = make()));
    return value;
  }

  output(value: Value, name?: string): Value {
    const output = name && name !== value.name ? this.node('Identity', [value], {}, { dtype: value.dtype, shape: [...value.shape] }, name) : value;
    this.graphOutputs.push(output);
    return output;
  }

  external(tensor: Omit<ExternalTensor, 'name'> & { name: string }): Value {
    const name = this.uniqueName(tensor.name);
    this.externalInitializers.push({ ...tensor, name });
    return { name, dtype: tensor.dtype, shape: tensor.shape, requiresGrad: false };
  }

  /** A constant tensor stored inside the model (shapes, axes, scalars). Identical constants are shared. */
  constant(dtype: 'int64' | FloatType, shape: number[], values: number[], hint = 'const'): Value {
    const key = `${dtype}|${shape.join(',')}|${values.join(',')}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const name = this.uniqueName(hint);
    const tensor: onnx.ITensorProto = { name, dataType: ONNX_TYPES[dtype], dims: shape };
    if (dtype === 'int64') tensor.int64Data = values;
    else if (dtype === 'float32') tensor.floatData = values;
    else if (dtype === 'float16') tensor.int32Data = values.map(float16Bits);
    else tensor.doubleData = values;
    this.inlineInitializers.push(tensor);
    const value: Value = { name, dtype, shape, requiresGrad: false };
    this.constantCache.set(key, value);
    return value;
  }

  /** A scalar in the graph's float type, or in `dtype` (the type of the operand it meets). */
  scalar(value: number, dtype: FloatType = this.floatType): Value {
    return this.constant(dtype, [], [value], 'scalar');
  }

  ints(values: number[]): Value {
    return this.constant('int64', [values.length], values, 'ints');
  }

  /** Emits one node with a single output. requiresGrad of the output is decided by the caller (ops.ts). */
  node(
    opType: string,
    inputs: Array<Value | null>,
    attributes: Record<string, AttributeValue>,
    out: { dtype: DType; shape: Dim[]; requiresGrad?: boolean },
    hint?: string,
  ): Value {
    const [value] = this.multiNode(opType, inputs, attributes, [out], hint);
    return value;
  }

  /**
   * A node of ONNX Runtime's com.microsoft domain (e.g. RotaryEmbedding, FastGelu): one kernel where the standard
   * ops at opset 18 need several. The CPU and WebGPU providers implement the ones ops.ts uses for float32.
   */
  contribNode(
    opType: string,
    inputs: Array<Value | null>,
    attributes: Record<string, AttributeValue>,
    out: { dtype: DType; shape: Dim[]; requiresGrad?: boolean },
    hint?: string,
  ): Value {
    const [value] = this.multiNode(opType, inputs, attributes, [out], hint, 'com.microsoft');
    return value;
  }

  multiNode(
    opType: string,
    inputs: Array<Value | null>,
    attributes: Record<string, AttributeValue>,
    outs: Array<{ dtype: DType; shape: Dim[]; requiresGrad?: boolean }>,
    hint?: string,
    domain = '',
  ): Value[] {
    const values = outs.map((out) => ({
      name: this.uniqueName(hint ?? opType.toLowerCase()),
      dtype: out.dtype,
      shape: out.shape,
      requiresGrad: out.requiresGrad ?? false,
    }));
    this.nodes.push({ opType, domain, inputs: inputs.map((v) => (v ? v.name : '')), outputs: values.map((v) => v.name), attributes });
    return values;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  toModelProto(producer = 'attribution-patching'): onnx.ModelProto {
    const valueInfo = (v: Value): onnx.IValueInfoProto => ({
      name: v.name,
      type: {
        tensorType: {
          elemType: ONNX_TYPES[v.dtype],
          shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
        },
      },
    });
    const externals: onnx.ITensorProto[] = this.externalInitializers.map((t) => ({
      name: t.name,
      dataType: ONNX_TYPES[t.dtype],
      dims: t.shape,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: t.location },
        { key: 'offset', value: String(t.offset) },
        { key: 'length', value: String(t.length) },
      ],
    }));
    const graph: onnx.IGraphProto = {
      name: 'attribution_patching',
      node: this.nodes.map((n) => ({
        opType: n.opType,
        ...(n.domain ? { domain: n.domain } : {}),
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attributes).map(([name, value]) => encodeAttribute(name, value)),
      })),
      initializer: [...this.inlineInitializers, ...externals],
      input: this.graphInputs.map(valueInfo),
      output: this.graphOutputs.map(valueInfo),
    };
    return onnx.ModelProto.create({
      irVersion: 9,
      opsetImport: [{ domain: '', version: 18 }, ...(this.nodes.some((n) => n.domain === 'com.microsoft') ? [{ domain: 'com.microsoft', version: 1 }] : [])],
      producerName: producer,
      graph,
    });
  }

  toBytes(): Uint8Array {
    return onnx.ModelProto.encode(this.toModelProto()).finish();
  }
}

function encodeAttribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return { name, type: T.INT, i: value };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  const tensor: onnx.ITensorProto = { dataType: ONNX_TYPES[value.dtype], dims: [1] };
  if (value.dtype === 'int64') tensor.int64Data = [value.scalarTensor];
  else if (value.dtype === 'float32') tensor.floatData = [value.scalarTensor];
  else if (value.dtype === 'float16') tensor.int32Data = [float16Bits(value.scalarTensor)];
  else tensor.doubleData = [value.scalarTensor];
  return { name, type: T.TENSOR, t: tensor };
}
