// Result files are shared, so their strings reach Markdown hovers and tooltips: escaped, they render as the very
// text they are. The oracle is markdown-it (CommonMark, with raw HTML enabled so that unescaped HTML would show).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeIcons, escapeMarkdown, markdownCode } from '../../src/editor/markdown';
import { seededRandom } from '../support/random';

// markdown-it is in the tree through @vscode/vsce (it renders the README for the Marketplace).
const MarkdownIt = require('markdown-it');
const md = new MarkdownIt({ html: true, linkify: true });
const html = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const HOSTILE = [
  '[click me](command:workbench.action.terminal.new)',
  '![x](https://example.com/track.png)',
  '<img src=x onerror=alert(1)>',
  '# heading',
  '- item',
  '1. item',
  '> quote',
  '*bold* _it_ ~~strike~~',
  '`code` ``two``',
  'a | table | row',
  'https://example.com/autolink',
  '<https://example.com>',
  '&copy; &#x41;',
  '$(alert) $(zap~spin)',
  'line one\n# line two\r\n---',
  'back\\slash\\',
  'gpt2 (openai-community/gpt2@main)',
  'cuda',
];

test('escapeMarkdown renders as the literal text, whatever it holds', () => {
  const random = seededRandom(11);
  const alphabet = '[]()!<>`*_~#|-+.&;$:/\\\'"{} \nab1=';
  const generated = Array.from({ length: 500 }, () =>
    Array.from({ length: 1 + Math.floor(random() * 20) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''),
  );
  for (const text of [...HOSTILE, ...generated]) {
    const literal = text.replace(/\r\n|[\r\n]/g, ' ').trim();
    if (literal === '') continue;
    const rendered = md.renderInline(escapeMarkdown(text).trim());
    assert.equal(rendered, html(literal), `${JSON.stringify(text)} rendered as ${rendered}`);
  }
});

test('markdownCode renders as one code span holding exactly the text', () => {
  for (const text of [...HOSTILE, '`', '``a`', ' leading', 'trailing ', '/home/me/data `x`.jsonl']) {
    const rendered = md.renderInline(markdownCode(text));
    assert.equal(rendered, `<code>${html(text.replace(/\r\n|[\r\n]/g, ' '))}</code>`, `${JSON.stringify(text)} rendered as ${rendered}`);
  }
});

test('escapeIcons keeps $(icon) syntax from turning into icons', () => {
  assert.equal(escapeIcons('model $(alert) on $(zap~spin)'), 'model \\$(alert) on \\$(zap~spin)');
  assert.equal(escapeIcons('a\nb'), 'a b');
});
