// The GPU check (run by scripts/gpu-check.sh): attribution patching on every device this machine offers (CPU,
// CUDA when onnxruntime-node's CUDA libraries are present, WebGPU on whatever adapter Dawn finds), for a
// GPT-2-small shape and a Qwen2.5-0.5B shape with random weights written at run time. Each device's outputs are
// compared with the CPU's, and the time per run is printed. No tokenizer, dataset or network: random token ids.
// Each GPU device also runs the float16 (mixed-precision) graph: its error against the CPU's float32 and its time
// per run beside float32's on the same device (the CPU runs float16 too with --tiny or --float16-cpu: it has few
// float16 kernels, so that is a check of the numbers, not of speed).
// Usage: gpu-check [--tiny] [--devices cpu,cuda,webgpu] [--repeats N] [--json FILE] [--float16-cpu] [--no-float16]
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/engine/graph/builder';
import { GraphWeights } from '../src/engine/graph/weights';
import { findTensor, readModelSpec } from '../src/engine/model/config';
import { indexModelWeights } from '../src/lib/model/safetensors';
import { architectureOf } from '../src/engine/architectures/families';
import { HOOK_KINDS } from '../src/engine/architectures/types';
import { ATTRIBUTION_OUTPUTS, buildAttributionGraph, GRADIENT_PEAK_OUTPUT, LOSS_SCALE_INPUT } from '../src/engine/patching/graphs';
import { createSession, float16Unsupported, prepareGraphDir, releaseSessions, type SessionHandle, writeGraphFile } from '../src/engine/process/runtime';
import { describeRuntime } from '../src/shared/result';
import type { Provider } from '../src/engine/process/devices';

interface Shape {
  name: string;
  config: Record<string, unknown>;
  tensors: Array<{ name: string; shape: number[]; init: 'normal' | 'one' }>;
}

function gpt2Shape(name: string, layers: number, heads: number, d: number, vocab: number): Shape {
  const tensors: Shape['tensors'] = [
    { name: 'wte.weight', shape: [vocab, d], init: 'normal' },
    { name: 'wpe.weight', shape: [1024, d], init: 'normal' },
  ];
  for (let l = 0; l < layers; l++) {
    const h = `h.${l}`;
    for (const [n, shape, init] of [
      ['ln_1.weight', [d], 'one'],
      ['ln_1.bias', [d], 'normal'],
      ['attn.c_attn.weight', [d, 3 * d], 'normal'],
      ['attn.c_attn.bias', [3 * d], 'normal'],
      ['attn.c_proj.weight', [d, d], 'normal'],
      ['attn.c_proj.bias', [d], 'normal'],
      ['ln_2.weight', [d], 'one'],
      ['ln_2.bias', [d], 'normal'],
      ['mlp.c_fc.weight', [d, 4 * d], 'normal'],
      ['mlp.c_fc.bias', [4 * d], 'normal'],
      ['mlp.c_proj.weight', [4 * d, d], 'normal'],
      ['mlp.c_proj.bias', [d], 'normal'],
    ] as const)
      tensors.push({ name: `${h}.${n}`, shape: [...shape], init });
  }
  tensors.push({ name: 'ln_f.weight', shape: [d], init: 'one' }, { name: 'ln_f.bias', shape: [d], init: 'normal' });
  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    n_layer: layers,
    n_head: heads,
    n_embd: d,
    n_inner: null,
    n_positions: 1024,
    n_ctx: 1024,
    vocab_size: vocab,
    layer_norm_epsilon: 1e-5,
    activation_function: 'gelu_new',
    scale_attn_by_inverse_layer_idx: false,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
  };
  return { name, config, tensors };
}

function qwen2Shape(name: string, layers: number, heads: number, kvHeads: number, d: number, mlp: number, vocab: number): Shape {
  const dHead = d / heads;
  const tensors: Shape['tensors'] = [{ name: 'model.embed_tokens.weight', shape: [vocab, d], init: 'normal' }];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    for (const [n, shape, init] of [
      ['input_layernorm.weight', [d], 'one'],
      ['self_attn.q_proj.weight', [heads * dHead, d], 'normal'],
      ['self_attn.q_proj.bias', [heads * dHead], 'normal'],
      ['self_attn.k_proj.weight', [kvHeads * dHead, d], 'normal'],
      ['self_attn.k_proj.bias', [kvHeads * dHead], 'normal'],
      ['self_attn.v_proj.weight', [kvHeads * dHead, d], 'normal'],
      ['self_attn.v_proj.bias', [kvHeads * dHead], 'normal'],
      ['self_attn.o_proj.weight', [d, heads * dHead], 'normal'],
      ['post_attention_layernorm.weight', [d], 'one'],
      ['mlp.gate_proj.weight', [mlp, d], 'normal'],
      ['mlp.up_proj.weight', [mlp, d], 'normal'],
      ['mlp.down_proj.weight', [d, mlp], 'normal'],
    ] as const)
      tensors.push({ name: `${p}.${n}`, shape: [...shape], init });
  }
  tensors.push({ name: 'model.norm.weight', shape: [d], init: 'one' });
  // As Qwen/Qwen2.5-0.5B's config.json (tied embeddings, rope_theta 1e6, 32768 positions).
  const config = {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_act: 'silu',
    hidden_size: d,
    intermediate_size: mlp,
    max_position_embeddings: 32768,
    num_attention_heads: heads,
    num_hidden_layers: layers,
    num_key_value_heads: kvHeads,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000.0,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    vocab_size: vocab,
    use_sliding_window: false,
    sliding_window: 32768,
    max_window_layers: layers,
  };
  return { name, config, tensors };
}

const FULL = [gpt2Shape('GPT-2 small (124M)', 12, 12, 768, 50257), qwen2Shape('Qwen2.5-0.5B (494M)', 24, 14, 2, 896, 4864, 151936)];
const TINY = [gpt2Shape('GPT-2 tiny', 2, 4, 64, 1000), qwen2Shape('Qwen2 tiny', 2, 4, 2, 64, 128, 1000)];

/**
 * config.json and model.safetensors, streamed tensor by tensor (the 0.5B model is 2 GB). Weights are uniform with
 * std 0.02·√(768/d)-ish scales chosen only to keep activations finite and logits non-degenerate; norms are 1.
 */
function writeModel(dir: string, shape: Shape, seed: number): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(shape.config, null, 2));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of shape.tensors) {
    const bytes = 4 * t.shape.reduce((p, q) => p * q, 1);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, length);
  writeSync(fd, Buffer.from(json, 'utf8'));
  let state = seed >>> 0 || 1;
  for (const t of shape.tensors) {
    const count = t.shape.reduce((p, q) => p * q, 1);
    const scale = 0.08 * Math.sqrt(3); // uniform on ±scale: std 0.08
    const chunk = new Float32Array(Math.min(count, 1 << 20));
    for (let done = 0; done < count; done += chunk.length) {
      const n = Math.min(chunk.length, count - done);
      for (let i = 0; i < n; i++) {
        if (t.init === 'one') {
          chunk[i] = 1;
          continue;
        }
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        chunk[i] = scale * (((state >>> 0) / 4294967296) * 2 - 1);
      }
      writeSync(fd, Buffer.from(chunk.buffer, 0, n * 4));
    }
  }
  closeSync(fd);
}

/** Builds the attribution graph in this precision next to the weights (through the engine's own graph cache). */
function buildGraph(dir: string, precision: 'float32' | 'float16' = 'float32'): { file: string; vocab: number; layers: number } {
  const spec = readModelSpec(dir);
  const weights = indexModelWeights(dir);
  const architecture = architectureOf(spec);
  const weightFiles = [...new Set([...weights.values()].map((e) => e.file))].sort();
  const graphDir = prepareGraphDir(weightFiles);
  const builder = new GraphBuilder(precision);
  buildAttributionGraph(architecture, builder, new GraphWeights(builder, (name) => findTensor(weights, name, dir), graphDir.locations));
  return { file: writeGraphFile(graphDir, builder.toBytes(), `attribution-${precision}`), vocab: spec.vocabSize, layers: spec.nLayers };
}

/** 8 prompts of 14 tokens (the seed notebook's IOI batch size and length), corrupted at two positions. */
function feeds(vocab: number): Record<string, ort.Tensor> {
  const batch = 8;
  const seq = 14;
  let state = 12345;
  const next = () => (state = (state * 1103515245 + 12345) % 2147483648) % vocab;
  const clean = BigInt64Array.from({ length: batch * seq }, () => BigInt(next()));
  const corrupted = clean.slice();
  for (let b = 0; b < batch; b++) for (const pos of [3, 9]) corrupted[b * seq + pos] = BigInt(next());
  const last = new Float32Array(batch * seq);
  for (let b = 0; b < batch; b++) last[b * seq + seq - 1] = 1;
  const ids = (n: number) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: n }, () => BigInt(next())),
      [n],
    );
  return {
    clean_ids: new ort.Tensor('int64', clean, [batch, seq]),
    corrupted_ids: new ort.Tensor('int64', corrupted, [batch, seq]),
    last_position: new ort.Tensor('float32', last, [batch, seq]),
    correct_ids: ids(batch),
    incorrect_ids: ids(batch),
  };
}

const OUTPUTS = [ATTRIBUTION_OUTPUTS.cleanLogitDiff, ATTRIBUTION_OUTPUTS.corruptedLogitDiff, ...HOOK_KINDS.map((k) => ATTRIBUTION_OUTPUTS.attribution(k))];

/** Largest |device − cpu| over each output, relative to that output's largest |cpu| value; the worst output. */
function relativeError(out: ort.InferenceSession.OnnxValueMapType, reference: ort.InferenceSession.OnnxValueMapType): number {
  let worst = 0;
  for (const name of OUTPUTS) {
    const a = out[name].data as Float32Array;
    const b = reference[name].data as Float32Array;
    let error = 0;
    let scale = 0;
    for (let i = 0; i < b.length; i++) {
      error = Math.max(error, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    worst = Math.max(worst, scale > 0 ? error / scale : error);
  }
  return worst;
}

/** A sanity bound for float32 on any device (the tests hold WebGPU to 1e-4; CUDA may use TF32 matmuls, ~1e-3). */
const TOLERANCE = 5e-3;
/** float16 against the CPU's float32: test/engine/float16.test.ts's bound (about 30 float16 epsilons). */
const FLOAT16_TOLERANCE = 3e-2;

const allFinite = (out: ort.InferenceSession.OnnxValueMapType) =>
  [...OUTPUTS, GRADIENT_PEAK_OUTPUT].every((name) => Array.from(out[name].data as Float32Array).every(Number.isFinite));

/**
 * The float16 graph's loss scale for these feeds, as the engine's dynamic scaling starts (src/engine/patching/run.ts:
 * LossScaler): 2^12, divided by 16 while the gradients overflow. undefined when even 2^-24 overflows, or the
 * forward pass does (random weights can leave float16's range).
 */
async function settledLossScale(handle: SessionHandle, input: Record<string, ort.Tensor>): Promise<number | undefined> {
  for (let scale = 2 ** 12; scale >= 2 ** -24; scale /= 16) {
    const out = await handle.session.run(withLossScale(input, scale));
    if (allFinite(out)) return scale;
  }
  return undefined;
}

const withLossScale = (input: Record<string, ort.Tensor>, scale: number) => ({
  ...input,
  [LOSS_SCALE_INPUT]: new ort.Tensor('float32', Float32Array.of(scale), []),
});

/** Session build, first run and the median of `repeats` runs. */
async function timeRuns(handle: SessionHandle, input: Record<string, ort.Tensor>, repeats: number) {
  let t = performance.now();
  const first = await handle.session.run(input);
  const firstRun = (performance.now() - t) / 1000;
  const times: number[] = [];
  let out = first;
  for (let i = 0; i < repeats; i++) {
    t = performance.now();
    out = await handle.session.run(input);
    times.push((performance.now() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  return { out, firstRun, median: times[Math.floor(times.length / 2)] ?? firstRun };
}

/** The float16 graph on one device: its error against the CPU's float32 outputs and its time beside float32's there. */
async function checkFloat16(
  shape: string,
  device: Provider,
  file: string,
  input: Record<string, ort.Tensor>,
  reference: ort.InferenceSession.OnnxValueMapType,
  float32Median: number,
  repeats: number,
): Promise<Record<string, unknown>> {
  const unsupported = await float16Unsupported(device);
  if (unsupported) {
    console.log(`${device} float16: not available (${unsupported})`);
    return { shape, device, precision: 'float16', available: false, notes: [unsupported] };
  }
  let t = performance.now();
  const handle = await createSession(file, device);
  try {
    if (handle.device !== device) {
      console.log(`${device} float16: not available (${handle.notes.join('; ')})`);
      return { shape, device, precision: 'float16', available: false, notes: handle.notes };
    }
    const build = (performance.now() - t) / 1000;
    t = performance.now();
    const lossScale = await settledLossScale(handle, input);
    if (lossScale === undefined) {
      console.log(`${device} float16: FAIL: the outputs are not finite at any loss scale (the forward pass leaves float16's range)`);
      return { shape, device, precision: 'float16', available: true, ok: false, error: 'not finite at any loss scale' };
    }
    const { out, firstRun, median } = await timeRuns(handle, withLossScale(input, lossScale), repeats);
    const error = relativeError(out, reference);
    const ok = error <= FLOAT16_TOLERANCE && Number.isFinite(error);
    console.log(
      `${device} float16: session ${build.toFixed(2)} s, first run ${firstRun.toFixed(3)} s, median of ${repeats} runs ${median.toFixed(4)} s ` +
        `(${(float32Median / median).toFixed(2)}× float32's speed here); loss scale 2^${Math.log2(lossScale)}; ` +
        `largest error vs CPU float32 ${error.toExponential(2)} (${ok ? 'ok' : 'FAIL'}, bound ${FLOAT16_TOLERANCE})\n  ${describeRuntime(handle.observer.info())}`,
    );
    return {
      shape,
      device,
      precision: 'float16',
      available: true,
      ok,
      sessionSeconds: build,
      firstRunSeconds: firstRun,
      medianRunSeconds: median,
      speedVsFloat32: float32Median / median,
      lossScale,
      relativeErrorVsCpu: error,
      runtime: handle.observer.info(),
      warnings: handle.observer.warnings(),
    };
  } finally {
    await handle.session.release();
  }
}

/**
 * Why WebGPU has no adapter when the cause is the Vulkan loader (Dawn dlopens libvulkan.so.1 on Linux, and a fresh
 * machine often lacks Debian's libvulkan1): [] when the loader loads, or off Linux. process.dlopen asks the dynamic
 * linker as Dawn does; a loader that loads fails only as "not a Node addon", which means it is there.
 */
function vulkanLoaderNotes(): string[] {
  if (process.platform !== 'linux') return [];
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, 'libvulkan.so.1');
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    if (/self-register|undefined symbol|napi_register|Module did not/i.test(message)) return [];
    return [`no usable Vulkan loader (${message}): install libvulkan1 (Debian/Ubuntu) or run scripts/gpu-check.sh with its kit (--prepare)`];
  }
  return [];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  const shapes = args.includes('--tiny') ? TINY : FULL;
  const repeats = Number(value('--repeats') ?? 5);
  const devices = (value('--devices') ?? 'cpu,cuda,webgpu').split(',') as Provider[];
  const float16 = !args.includes('--no-float16');
  const float16OnCpu = args.includes('--tiny') || args.includes('--float16-cpu');
  if (devices[0] !== 'cpu') devices.unshift('cpu'); // the reference
  const work = mkdtempSync(join(tmpdir(), 'atp-gpu-check-'));
  process.env.ATP_CACHE_DIR = join(work, 'cache');
  const report: Array<Record<string, unknown>> = [];
  let failed = false;
  try {
    for (const [index, shape] of shapes.entries()) {
      const dir = join(work, `model-${index}`);
      let t = performance.now();
      writeModel(dir, shape, 1 + index);
      const graph = buildGraph(dir);
      const halfGraph = float16 ? buildGraph(dir, 'float16') : undefined;
      console.log(`\n== ${shape.name}: weights written and graph built in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const input = feeds(graph.vocab);
      let reference: ort.InferenceSession.OnnxValueMapType | undefined;
      for (const device of devices) {
        t = performance.now();
        const handle = await createSession(graph.file, device);
        if (handle.device !== device) {
          const notes = [...handle.notes, ...(device === 'webgpu' ? vulkanLoaderNotes() : [])];
          console.log(`${device}: not available (${notes.join('; ')})`);
          // The same fields as an entry that ran (precision included), so a reader finds it the same way.
          report.push({ shape: shape.name, device, precision: 'float32', available: false, notes });
          await handle.session.release();
          continue;
        }
        const build = (performance.now() - t) / 1000;
        const { out, firstRun, median } = await timeRuns(handle, input, repeats);
        const runtime = handle.observer.info();
        const warnings = handle.observer.warnings();
        const error = reference ? relativeError(out, reference) : 0;
        if (!reference) reference = out;
        const ok = error <= TOLERANCE && Number.isFinite(error);
        if (!ok) failed = true;
        console.log(
          `${device}: session ${build.toFixed(2)} s, first run ${firstRun.toFixed(3)} s, median of ${repeats} runs ${median.toFixed(4)} s; ` +
            `${device === 'cpu' ? 'reference' : `largest error vs CPU ${error.toExponential(2)} (${ok ? 'ok' : 'FAIL'}, bound ${TOLERANCE})`}\n  ${describeRuntime(runtime)}` +
            (warnings.length ? `\n  warning: ${warnings.join('; ')}` : ''),
        );
        report.push({
          shape: shape.name,
          device,
          precision: 'float32',
          available: true,
          sessionSeconds: build,
          firstRunSeconds: firstRun,
          medianRunSeconds: median,
          relativeErrorVsCpu: error,
          runtime,
          warnings,
        });
        await handle.session.release();
        if (halfGraph && (device !== 'cpu' || float16OnCpu)) {
          const entry = await checkFloat16(shape.name, device, halfGraph.file, input, reference, median, repeats);
          if (entry.available && entry.ok !== true) failed = true;
          report.push(entry);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await releaseSessions();
    rmSync(work, { recursive: true, force: true });
  }
  const json = value('--json');
  if (json) writeFileSync(json, JSON.stringify({ node: process.version, ort: ort.env.versions?.common, repeats, report }, null, 2));
  if (failed) {
    console.log(`\nFAIL: a device's outputs differ from the CPU's by more than ${TOLERANCE} (float16: ${FLOAT16_TOLERANCE}), or are not finite`);
    process.exitCode = 1;
  } else console.log('\nall devices that ran agree with the CPU');
  if (!existsSync(work)) return;
}

void main().catch((error) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(2);
});
