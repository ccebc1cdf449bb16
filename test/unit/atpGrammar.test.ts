// The .atp TextMate grammar (syntaxes/atp.tmLanguage.json), run by VS Code's own tokenizer (vscode-textmate with
// the oniguruma regex engine): which scopes each piece of a line gets.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as oniguruma from 'vscode-oniguruma';
import * as textmate from 'vscode-textmate';

const ROOT = join(__dirname, '../..');
let grammar: textmate.IGrammar;

before(async () => {
  const wasm = readFileSync(join(ROOT, 'node_modules/vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) as ArrayBuffer);
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === 'source.atp' ? textmate.parseRawGrammar(readFileSync(join(ROOT, 'syntaxes/atp.tmLanguage.json'), 'utf8'), 'atp.tmLanguage.json') : null,
  });
  grammar = (await registry.loadGrammar('source.atp'))!;
});

/** Each token's text and its innermost scope (the one a theme colours by), for one line. */
function tokens(line: string): Array<[string, string]> {
  const { tokens: result } = grammar.tokenizeLine(line, textmate.INITIAL);
  return result.map((t) => [line.slice(t.startIndex, t.endIndex), t.scopes[t.scopes.length - 1]]);
}

/** The innermost scope of the first token whose text is `text`. */
function scopeOf(line: string, text: string): string | undefined {
  return tokens(line).find(([t]) => t === text)?.[1];
}

test('a comment line, also indented; a # later in a prompt is text', () => {
  assert.deepEqual(tokens('# IOI pairs'), [
    ['#', 'punctuation.definition.comment.atp'],
    [' IOI pairs', 'comment.line.number-sign.atp'],
  ]);
  assert.equal(scopeOf('   # indented', ' indented'), 'comment.line.number-sign.atp');
  assert.equal(scopeOf('a # b => "x" | "y"', 'a # b '), 'source.atp');
});

test('a span: clean and corrupted sides get different scopes; the arrow, the answers and their separator', () => {
  const line = 'When John and Mary went to the shops, {John|Mary} gave the bag to => " Mary" | " John"';
  assert.deepEqual(tokens(line), [
    ['When John and Mary went to the shops, ', 'source.atp'],
    ['{', 'punctuation.definition.span.begin.atp'],
    ['John', 'support.type.clean.atp'],
    ['|', 'punctuation.separator.span.atp'],
    ['Mary', 'keyword.control.corrupted.atp'],
    ['}', 'punctuation.definition.span.end.atp'],
    [' gave the bag to ', 'source.atp'],
    ['=>', 'storage.type.function.arrow.atp'],
    [' ', 'meta.answers.atp'],
    ['"', 'punctuation.definition.string.begin.atp'],
    [' Mary', 'string.quoted.double.atp'],
    ['"', 'punctuation.definition.string.end.atp'],
    [' ', 'meta.answers.atp'],
    ['|', 'punctuation.separator.answers.atp'],
    [' ', 'meta.answers.atp'],
    ['"', 'punctuation.definition.string.begin.atp'],
    [' John', 'string.quoted.double.atp'],
    ['"', 'punctuation.definition.string.end.atp'],
  ]);
});

test('escapes in the prompt, inside a span side and in an answer; unknown escapes are invalid', () => {
  const line = 'Format \\{name\\} as {a\\|b|a/b}, \\=> ok\\  => " \\"ok\\"" | " no\\q"';
  const all = tokens(line);
  const escapes = all.filter(([, scope]) => scope === 'constant.character.escape.atp').map(([t]) => t);
  assert.deepEqual(escapes, ['\\{', '\\}', '\\|', '\\=', '\\ ', '\\"', '\\"']);
  assert.deepEqual(
    all.filter(([, scope]) => scope.startsWith('invalid')).map(([t]) => t),
    ['\\q'],
  );
  // \=> is a literal "=>" in the prompt: the arrow is the later one.
  assert.equal(all.filter(([, scope]) => scope === 'storage.type.function.arrow.atp').length, 1);
  assert.equal(scopeOf('\\### Instruction: x => "a" | "b"', '\\#'), 'constant.character.escape.atp');
  assert.equal(scopeOf('a \\x b => "a" | "b"', '\\x'), 'invalid.illegal.escape.atp');
});

test('spans with an empty side, several spans on a line', () => {
  const line = 'The answer is{ very|} clearly {A|B}: => "yes" | "no"';
  const all = tokens(line);
  assert.equal(scopeOf(line, ' very'), 'support.type.clean.atp');
  assert.deepEqual(
    all.filter(([, s]) => s === 'keyword.control.corrupted.atp').map(([t]) => t),
    ['B'],
  );
  assert.equal(all.filter(([, s]) => s === 'punctuation.definition.span.begin.atp').length, 2);
});

test('broken spans: an unbalanced brace, a bar outside a span, a span with two bars are marked invalid', () => {
  assert.equal(scopeOf('When {John and Mary => "a" | "b"', '{'), 'invalid.illegal.stray.atp');
  assert.equal(scopeOf('When John} and Mary => "a" | "b"', '}'), 'invalid.illegal.stray.atp');
  assert.equal(scopeOf('When John | Mary => "a" | "b"', '|'), 'invalid.illegal.stray.atp');
  const twoBars = tokens('x {a|b|c} => "a" | "b"');
  assert.ok(!twoBars.some(([, s]) => s === 'meta.span.atp' || s.endsWith('corrupted.atp')), JSON.stringify(twoBars));
  // A span does not run past the arrow.
  assert.equal(scopeOf('x {a|b => "a" | "b"', '=>'), 'storage.type.function.arrow.atp');
});

test('answers: unquoted text after the arrow is invalid; an unterminated answer stops at the line end', () => {
  assert.equal(scopeOf('x {a|b} => Mary | "b"', 'Mary'), 'invalid.illegal.unquoted.atp');
  const next = grammar.tokenizeLine('x {a|b} => "unterminated', textmate.INITIAL);
  const second = grammar.tokenizeLine('# next line', next.ruleStack);
  assert.equal(second.tokens[0].scopes.at(-1), 'punctuation.definition.comment.atp');
});
