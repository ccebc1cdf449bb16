import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../src/shared/errors';
import { findPreset, formatPresetTable, MODEL_PRESETS, resolvePreset } from '../../src/lib/model/presets';

test("the seed's base models M0–M5", () => {
  const base = Object.fromEntries(MODEL_PRESETS.filter((p) => p.group === 'base').map((p) => [p.name, p.repo]));
  assert.deepEqual(base, {
    M0: 'openai-community/gpt2',
    M1: 'roneneldan/TinyStories-Instruct-2Layers-33M',
    M2: 'Qwen/Qwen2.5-0.5B-Instruct',
    M3: 'withmartian/Llama-3.2-1B-Instruct',
    M4: 'ibm-granite/granite-3.0-1b-a400m-instruct',
    M5: 'HuggingFaceTB/SmolLM-360M-Instruct',
  });
});

test('the TinySQL fine-tunes by base model, command set and dataset', () => {
  const repo = (bm: number, cs: number, experiment: string) => `withmartian/sql_interp_bm${bm}_cs${cs}_experiment_${experiment}`;
  const expected: Record<string, string> = {
    'bm1-cs1': repo(1, 1, '1.10'),
    'bm1-cs2': repo(1, 2, '2.10'),
    'bm1-cs3': repo(1, 3, '3.10'),
    'bm1-cs4': repo(1, 4, '1.1'),
    'bm1-cs5': repo(1, 5, '1.2'),
    'bm1-cs1-nonsemantic': repo(1, 1, '1.8'),
    'bm1-cs2-nonsemantic': repo(1, 2, '2.8'),
    'bm1-cs3-nonsemantic': repo(1, 3, '3.8'),
    'bm2-cs1': repo(2, 1, '4.3'),
    'bm2-cs2': repo(2, 2, '5.3'),
    'bm2-cs3': repo(2, 3, '6.3'),
    'bm2-cs1-nonsemantic': repo(2, 1, '4.2'),
    'bm2-cs2-nonsemantic': repo(2, 2, '5.2'),
    'bm2-cs3-nonsemantic': repo(2, 3, '6.2'),
    'bm3-cs1': repo(3, 1, '7.3'),
    'bm3-cs2': repo(3, 2, '8.3'),
    'bm3-cs3': repo(3, 3, '9.3'),
    'bm3-cs1-nonsemantic': repo(3, 1, '7.2'),
    'bm3-cs2-nonsemantic': repo(3, 2, '8.2'),
    'bm3-cs3-nonsemantic': repo(3, 3, '9.2'),
  };
  const tinySql = Object.fromEntries(MODEL_PRESETS.filter((p) => p.group === 'tinysql').map((p) => [p.name, p.repo]));
  assert.deepEqual(tinySql, expected);
  assert.equal(new Set(MODEL_PRESETS.map((p) => p.repo)).size, MODEL_PRESETS.length, 'no two presets share a repo');
  for (const preset of MODEL_PRESETS) assert.ok(preset.description.length > 10, `${preset.name} has a description`);
  assert.match(findPreset('bm2-cs3-nonsemantic')!.description, /Qwen2\.5-0\.5B-Instruct \(BM2\).*CS3, non-semantic dataset \(experiment 6\.2\)/);
});

test('names are case-insensitive; -semantic is the default and may be said', () => {
  assert.equal(findPreset('M2')?.repo, 'Qwen/Qwen2.5-0.5B-Instruct');
  assert.equal(findPreset('m2')?.name, 'M2');
  assert.equal(findPreset(' BM1-CS1 ')?.name, 'bm1-cs1');
  assert.equal(findPreset('bm1-cs1-semantic')?.name, 'bm1-cs1');
  assert.equal(findPreset('bm1-cs1-NonSemantic')?.name, 'bm1-cs1-nonsemantic');
  assert.equal(findPreset('m2-semantic'), undefined);
  assert.equal(findPreset('openai-community/gpt2'), undefined);
});

test('unknown preset-looking names list every preset; other names are not presets', () => {
  for (const name of ['M6', 'm12', 'bm4-cs1', 'bm1-cs4-nonsemantic', 'bm1cs1', 'bm1-cs1-semantik']) {
    assert.throws(
      () => resolvePreset(name),
      (error: unknown) => {
        assert.ok(error instanceof InputError);
        assert.match(error.message, new RegExp(`unknown preset "${name}"`));
        for (const preset of MODEL_PRESETS) assert.ok(error.message.includes(preset.name) && error.message.includes(preset.repo));
        return true;
      },
    );
  }
  assert.equal(resolvePreset('gpt2'), undefined);
  assert.equal(resolvePreset('my-model'), undefined);
  assert.equal(resolvePreset('M3')?.repo, 'withmartian/Llama-3.2-1B-Instruct');
});

test('the table has one aligned line per preset', () => {
  const lines = formatPresetTable().split('\n');
  assert.equal(lines.length, MODEL_PRESETS.length);
  assert.match(lines[0], /^ {2}M0 +openai-community\/gpt2 +GPT-2 small/);
  const repoColumn = lines.map((line, i) => line.indexOf(MODEL_PRESETS[i].repo));
  assert.equal(new Set(repoColumn).size, 1);
});
