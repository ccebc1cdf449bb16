import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeStalePendingFiles, writeFilesAtomically, writeTextAtomically } from '../../src/lib/files/atomicWrite';

test('the next write removes temp files left by a killed writer of the same target, and only those', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atp-atomic-'));
  try {
    const target = join(dir, 'result.json');
    // A pid above Linux's pid_max cannot be running; the parent of this process certainly is.
    const dead = `.result.json.4194399.0123456789ab.tmp`;
    const live = `.result.json.${process.ppid}.0123456789ab.tmp`;
    const otherTarget = `.other.json.4194399.0123456789ab.tmp`;
    const notOurs = `.result.json.4194399.tmp`;
    for (const name of [dead, live, otherTarget, notOurs]) writeFileSync(join(dir, name), '');
    writeTextAtomically(target, 'new');
    assert.equal(readFileSync(target, 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir).sort(), [live, otherTarget, notOurs, 'result.json'].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeFilesAtomically replaces no target when one of them cannot be written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atp-atomic-'));
  try {
    const first = join(dir, 'a.json');
    writeFileSync(first, 'old');
    assert.throws(
      () =>
        writeFilesAtomically([
          { file: first, contents: 'new', what: 'the result' },
          { file: join(dir, 'missing-folder', 'b.html'), contents: 'new', what: 'the report' },
        ]),
      /b\.html: cannot write the report/,
    );
    assert.equal(readFileSync(first, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['a.json']);
    // A target that is a folder would fail only at its rename, after the others: it is refused before any rename.
    mkdirSync(join(dir, 'folder.html'));
    assert.throws(
      () =>
        writeFilesAtomically([
          { file: first, contents: 'new', what: 'the result' },
          { file: join(dir, 'folder.html'), contents: 'new', what: 'the report' },
        ]),
      /folder\.html: cannot write the report: it is a folder/,
    );
    assert.equal(readFileSync(first, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir).sort(), ['a.json', 'folder.html']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the extension's pending results (and their temp files) left by killed processes are removed, live ones kept", () => {
  const dir = mkdtempSync(join(tmpdir(), 'atp-atomic-'));
  try {
    const result = join(dir, 'd.jsonl.atp-result.json');
    const deadPending = '.d.jsonl.atp-result.json.4194399.1700000000000.pending';
    const livePending = `.d.jsonl.atp-result.json.${process.ppid}.1700000000001.pending`;
    const deadTemp = '..d.jsonl.atp-result.json.4194399.1700000000000.pending.4194398.0123456789ab.tmp';
    const liveTemp = `..d.jsonl.atp-result.json.${process.ppid}.1700000000001.pending.${process.ppid}.0123456789ab.tmp`;
    const other = '.e.jsonl.atp-result.json.4194399.1700000000000.pending';
    for (const name of [deadPending, livePending, deadTemp, liveTemp, other, 'd.jsonl.atp-result.json']) writeFileSync(join(dir, name), '');
    removeStalePendingFiles(result);
    assert.deepEqual(readdirSync(dir).sort(), [livePending, liveTemp, other, 'd.jsonl.atp-result.json'].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
