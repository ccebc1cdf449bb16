// Progress of long work (batches of a run, exact patching runs): typed events from the engine, one formatter for
// the CLI's line and the editor's notification, and the estimate of the time left. No Node or DOM import.
import type { ProgressEvent } from './workerProtocol';

/** "45 s", "3 min 12 s", "1 h 05 min": the time left, rounded to what a person reads at a glance. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** "AtP*: batch 36/625 (5%), about 3 min 12 s left"; no ETA before the first step is done (nothing to go by). */
export function formatProgress(event: ProgressEvent): string {
  const percent = event.total > 0 ? Math.floor((100 * event.done) / event.total) : 100;
  const left = event.etaSeconds === undefined || event.done >= event.total ? '' : `, about ${formatDuration(event.etaSeconds)} left`;
  return `${event.phase}: ${event.unit} ${event.done}/${event.total} (${percent}%)${left}`;
}

/**
 * Events for one phase of `total` steps: step(done) after each step, with the time left estimated from the mean
 * time per step so far (steps of one phase cost about the same: batches of similar length).
 */
export function progressTracker(
  phase: string,
  unit: ProgressEvent['unit'],
  total: number,
  emit: ((event: ProgressEvent) => void) | undefined,
  now: () => number = () => performance.now(),
): (done: number) => void {
  const started = now();
  return (done) => {
    if (!emit) return;
    const elapsed = (now() - started) / 1000;
    emit({ phase, unit, done, total, ...(done > 0 ? { etaSeconds: (elapsed / done) * (total - done) } : {}) });
  };
}
