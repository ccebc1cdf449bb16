// The CLI's progress on stderr: on a terminal one line that updates in place (\r), elsewhere (a pipe, a log file)
// plain lines at the start, every 10% and the end, so that logs stay short and never hold control characters.
import { formatProgress } from '../shared/progress';
import type { ProgressEvent } from '../shared/workerProtocol';

export class ProgressLine {
  /** A \r line is on screen and not yet ended. */
  private open = false;
  private lastTenth = -1;

  constructor(
    private readonly out: { write(text: string): unknown },
    private readonly tty: boolean,
  ) {}

  step(event: ProgressEvent): void {
    const text = formatProgress(event);
    const finished = event.done >= event.total;
    if (this.tty) {
      // \x1b[K clears what a longer previous line left to the right.
      this.out.write(`\r${text}\x1b[K`);
      this.open = !finished;
      if (finished) this.out.write('\n');
      return;
    }
    const tenth = event.total > 0 ? Math.floor((10 * event.done) / event.total) : 10;
    if (event.done === 0 || finished || tenth !== this.lastTenth) this.out.write(`${text}\n`);
    this.lastTenth = finished ? -1 : tenth;
  }

  /** Any other message: on a terminal it first ends the progress line, so the two never share a line. */
  message(text: string): void {
    if (this.open) {
      this.out.write('\n');
      this.open = false;
    }
    this.out.write(`${text}\n`);
  }
}
