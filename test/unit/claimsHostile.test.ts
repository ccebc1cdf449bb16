// Claims files and folders made carelessly or to harm (issue #26): caps on claims, random draws and curve sizes;
// JUnit that stays valid XML whatever a claim is named; folder searches that follow no link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_CLAIMS, MAX_CLAIMS_TEXT, MAX_RANDOM_DRAWS, parseClaims, formatProblem, type Claim } from '../../src/lib/claims/schema';
import { junitXml } from '../../src/lib/claims/junit';
import { findClaimsFiles } from '../../src/cli/test';
import { InputError } from '../../src/shared/errors';

const head = 'model: m\ndataset: d.jsonl\n';

test(`random_draws above ${MAX_RANDOM_DRAWS} is refused at its line, with the cap and why`, () => {
  const { claims, problems } = parseClaims(`${head}circuit: {random_draws: 10000000}\nclaims:\n  - faithfulness: {edges: 2, at_least: 0.5}\n`, 'a.claims.yaml');
  assert.equal(claims, undefined);
  assert.deepEqual(
    problems.map((p) => [p.line, p.field, p.message]),
    [[3, 'circuit.random_draws', 'expected at most 100 random circuits per size (each costs a forward pass over the dataset at every size), got 10000000']],
  );
  assert.ok(parseClaims(`${head}circuit: {random_draws: ${MAX_RANDOM_DRAWS}}\nclaims:\n  - faithfulness: {edges: 2, at_least: 0.5}\n`, 'a.claims.yaml').claims);
});

test(`more than ${MAX_CLAIMS} claims are refused before any is parsed; an endless file before it is parsed`, () => {
  const many = (n: number) => `${head}claims:\n${'  - top_heads: {k: 1, include: [L0H0]}\n'.repeat(n)}`;
  assert.equal(parseClaims(many(MAX_CLAIMS), 'a.claims.yaml').claims?.claims.length, MAX_CLAIMS);
  const started = performance.now();
  const { claims, problems } = parseClaims(many(20_000), 'a.claims.yaml');
  assert.equal(claims, undefined);
  assert.deepEqual(
    problems.map((p) => p.message),
    [`20000 claims; a claims file may hold at most ${MAX_CLAIMS} (split it into several files)`],
  );
  assert.ok(performance.now() - started < 10_000);
  const huge = parseClaims(`${head}# ${'x'.repeat(MAX_CLAIMS_TEXT)}\n`, 'a.claims.yaml');
  assert.match(huge.problems[0].message, /a claims file may have at most 4194304/);
  const sizes = parseClaims(
    `${head}circuit: {sizes: [${Array.from({ length: 201 }, (_, i) => i + 1).join(', ')}]}\nclaims:\n  - faithfulness: {edges: 2, at_least: 0.5}\n`,
    'a',
  );
  assert.match(sizes.problems[0].message, /expected at most 200 sizes, got 201/);
});

/** XML 1.0's Char production: what a well-formed document may contain. */
const XML_CHARS = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

test('JUnit XML holds only XML 1.0 characters whatever the claim and file are named (U+FFFF, U+FFFE, lone surrogates, controls)', () => {
  const entry = (name: string) => ({ id: name, name, line: 1, column: 3, claim: { kind: 'baselines', clean: { greaterThan: 0 } } as Claim });
  const names = ['a\uFFFFb', 'a\uFFFEb', 'a\uD800b', 'a\uDC00b', 'a\u0001b', 'a\u001Fb', 'emoji 😀 ok', 'tab\tok'];
  const xml = junitXml([
    {
      file: 'x\uFFFF.claims.yaml',
      seconds: 0,
      reports: names.map((name) => ({ entry: entry(name), outcome: { status: 'failed' as const, expected: `e${name}`, actual: `a${name}` } })),
    },
  ]);
  assert.match(xml, XML_CHARS);
  assert.ok(xml.includes('name="a\uFFFDb"'), 'an invalid character is replaced by U+FFFD, so the name still shows one was there');
  assert.ok(xml.includes('emoji 😀 ok'), 'characters outside the BMP are kept');
  assert.ok(xml.includes('tab\tok'));
});

test('a folder search follows no symbolic link: broken links, loops and links out of the tree are skipped with a note', () => {
  const root = mkdtempSync(join(tmpdir(), 'atp-claims-walk-'));
  try {
    const tree = join(root, 'tree');
    const outside = join(root, 'outside');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(tree, 'sub', 'a.claims.yaml'), head);
    writeFileSync(join(outside, 'secret.claims.yaml'), head);
    symlinkSync(join(root, 'nowhere'), join(tree, 'broken.claims.yaml'));
    symlinkSync(tree, join(tree, 'sub', 'loop'));
    symlinkSync(outside, join(tree, 'elsewhere'));
    symlinkSync(join(outside, 'secret.claims.yaml'), join(tree, 'linked.claims.yaml'));
    symlinkSync(join(tree, 'self'), join(tree, 'self'));
    const notes: string[] = [];
    assert.deepEqual(
      findClaimsFiles([tree], (note) => notes.push(note)),
      [join(tree, 'sub', 'a.claims.yaml')],
    );
    assert.deepEqual(notes, [
      `note: skipped ${join(tree, 'broken.claims.yaml')}: a broken symbolic link`,
      `note: skipped ${join(tree, 'elsewhere')}: a symbolic link (a folder search follows none; name it to test it)`,
      `note: skipped ${join(tree, 'linked.claims.yaml')}: a symbolic link (a folder search follows none; name it to test it)`,
      `note: skipped ${join(tree, 'self')}: a broken symbolic link`,
      `note: skipped ${join(tree, 'sub', 'loop')}: a symbolic link (a folder search follows none; name it to test it)`,
    ]);
    // Named on the command line, a link is taken as given.
    assert.deepEqual(findClaimsFiles([join(tree, 'linked.claims.yaml')]), [join(tree, 'linked.claims.yaml')]);
    assert.throws(() => findClaimsFiles([join(tree, 'broken.claims.yaml')]), InputError);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('random_draws must be at least 1: the random baseline is their mean (0 made it NaN and the circuit Result unwritable)', () => {
  const parsed = parseClaims('model: m\ndataset: d.jsonl\ncircuit: {random_draws: 0}\nclaims:\n  - faithfulness: {edges: 3, at_least: 0.5}\n', 'a.claims.yaml');
  assert.ok(
    'problems' in parsed && parsed.problems.some((p) => /circuit\.random_draws: expected an integer ≥ 1, got 0/.test(formatProblem('a.claims.yaml', p))),
    JSON.stringify(parsed),
  );
});
