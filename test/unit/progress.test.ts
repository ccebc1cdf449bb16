// Progress of long work: the formatter, the time-left estimate, and the CLI's line on a terminal and in a pipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, formatProgress, progressTracker } from '../../src/shared/progress';
import { ProgressLine } from '../../src/cli/progressLine';
import type { ProgressEvent } from '../../src/shared/workerProtocol';

test('durations read at a glance: seconds, minutes and seconds, hours and minutes', () => {
  assert.equal(formatDuration(0), '0 s');
  assert.equal(formatDuration(44.6), '45 s');
  assert.equal(formatDuration(192), '3 min 12 s');
  assert.equal(formatDuration(3600 + 5 * 60 + 59), '1 h 05 min');
  assert.equal(formatDuration(-3), '0 s', 'never negative');
});

test('a step: phase, unit, done of total, percent, and the time left once there is something to go by', () => {
  assert.equal(formatProgress({ phase: 'AtP*', unit: 'batch', done: 0, total: 625 }), 'AtP*: batch 0/625 (0%)');
  assert.equal(formatProgress({ phase: 'AtP*', unit: 'batch', done: 36, total: 625, etaSeconds: 192.4 }), 'AtP*: batch 36/625 (5%), about 3 min 12 s left');
  assert.equal(
    formatProgress({ phase: 'exact token patching', unit: 'run', done: 5000, total: 5000, etaSeconds: 0 }),
    'exact token patching: run 5000/5000 (100%)',
  );
});

test('the time left is the mean time per step so far times the steps to go', () => {
  let clock = 1000;
  const events: ProgressEvent[] = [];
  const step = progressTracker(
    'AtP',
    'batch',
    10,
    (e) => events.push(e),
    () => clock,
  );
  step(0);
  clock += 4000; // 4 s for two batches: 2 s each, 8 to go
  step(2);
  clock += 16_000;
  step(10);
  assert.deepEqual(events, [
    { phase: 'AtP', unit: 'batch', done: 0, total: 10 },
    { phase: 'AtP', unit: 'batch', done: 2, total: 10, etaSeconds: 16 },
    { phase: 'AtP', unit: 'batch', done: 10, total: 10, etaSeconds: 0 },
  ]);
  progressTracker('AtP', 'batch', 3, undefined)(1); // no listener: nothing to do, nothing thrown
});

function capture(tty: boolean): { line: ProgressLine; text: () => string } {
  const chunks: string[] = [];
  return { line: new ProgressLine({ write: (s: string) => chunks.push(s) }, tty), text: () => chunks.join('') };
}

const steps = (total: number) =>
  Array.from({ length: total + 1 }, (_, done): ProgressEvent => ({
    phase: 'AtP',
    unit: 'batch',
    done,
    total,
    ...(done > 0 ? { etaSeconds: total - done } : {}),
  }));

test('on a terminal: one line updated in place, ended when the phase is done or another message comes', () => {
  const { line, text } = capture(true);
  line.message('loading model');
  for (const event of steps(3).slice(0, 2)) line.step(event);
  line.message('a warning');
  for (const event of steps(3).slice(2)) line.step(event);
  line.message('wrote result.json');
  assert.equal(
    text(),
    'loading model\n' +
      '\rAtP: batch 0/3 (0%)\x1b[K\rAtP: batch 1/3 (33%), about 2 s left\x1b[K\n' +
      'a warning\n' +
      '\rAtP: batch 2/3 (66%), about 1 s left\x1b[K\rAtP: batch 3/3 (100%)\x1b[K\n' +
      'wrote result.json\n',
  );
});

test('piped: plain lines at the start, every 10% and the end, no control characters', () => {
  const { line, text } = capture(false);
  for (const event of steps(625)) line.step(event);
  line.message('done');
  const lines = text().trimEnd().split('\n');
  assert.ok(!/[\r\x1b]/.test(text()));
  assert.equal(lines[0], 'AtP: batch 0/625 (0%)');
  assert.equal(lines.at(-2), 'AtP: batch 625/625 (100%)');
  assert.equal(lines.at(-1), 'done');
  assert.equal(lines.length, 1 + 10 + 1, lines.join('\n'));
  assert.match(lines[1], /^AtP: batch 63\/625 \(10%\), about \d+ min \d+ s left$/);
});
