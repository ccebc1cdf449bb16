// The one escaper of the HTML reports, the SVG drawings and JUnit XML (src/shared/markup.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { escapeXml, escapeXmlKeepingApostrophes } from '../../src/shared/markup';

test('escapeXml: the five special characters as entities, everything else as it is', () => {
  assert.equal(escapeXml(`a & b < c > d "e" 'f'`), 'a &amp; b &lt; c &gt; d &quot;e&quot; &#39;f&#39;');
  assert.equal(escapeXml('tab\tnewline\nreturn\r, é, 中文, 🙂 (a surrogate pair)'), 'tab\tnewline\nreturn\r, é, 中文, 🙂 (a surrogate pair)');
  assert.equal(escapeXmlKeepingApostrophes(`it's <"x">`), "it's &lt;&quot;x&quot;&gt;");
});

test('escapeXml replaces what XML 1.0 cannot hold by U+FFFD: C0 controls, lone surrogates, U+FFFE and U+FFFF', () => {
  const hostile = 'a\u0000b\u0001c\u0008d\u000Be\u000Cf\u001Fg\uD800h\uDC00i\uFFFEj\uFFFFk';
  const replaced = 'a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\uFFFDf\uFFFDg\uFFFDh\uFFFDi\uFFFDj\uFFFDk';
  assert.equal(escapeXml(hostile), replaced);
  assert.equal(escapeXmlKeepingApostrophes(hostile), replaced);
  // An XML parser takes the result: Python's expat, as CI systems' JUnit readers do.
  const xml = `<r a="${escapeXml(hostile + `<&"'>`)}">${escapeXmlKeepingApostrophes(hostile + `<&"'>`)}</r>`;
  const python = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      'import sys, xml.dom.minidom as m; d = m.parseString(sys.stdin.buffer.read()); print(d.documentElement.getAttribute("a") == d.documentElement.firstChild.data)',
    ],
    { input: Buffer.from(xml, 'utf8'), encoding: 'utf8' },
  );
  if (python.error) return; // no python3 here: the string checks above stand
  assert.equal(python.stderr, '');
  assert.equal(python.stdout.trim(), 'True');
});
