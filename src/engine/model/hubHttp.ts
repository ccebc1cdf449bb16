// The hub's HTTP details that do not depend on a download in progress: error kinds, causes in words, retries'
// sleep, and the header and URL forms the hub uses.

// ---- errors --------------------------------------------------------------------------------------------------

/** The hub could not be reached, or answered with a server error: the cache may still serve. */
export class HubUnreachable extends Error {}

/** A transfer broke off (connection lost, short body): worth retrying with a Range request. */
export class TransferBroken extends Error {}

export function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    const inner = cause instanceof AggregateError && cause.errors[0] instanceof Error ? cause.errors[0].message : cause.message;
    return code ? `${code}: ${inner}` : inner || error.message;
  }
  return error.message;
}

export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true && (error === signal.reason || (error instanceof Error && error.name === 'AbortError'));
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export function normalizeEtag(value: string | null): string | undefined {
  if (!value) return undefined;
  return value.trim().replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

export function parseSize(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  const size = Number(value.trim());
  return Number.isSafeInteger(size) ? size : undefined;
}

export const encodeRepo = (repo: string) => repo.split('/').map(encodeURIComponent).join('/');
export const encodeFile = (file: string) => file.split('/').map(encodeURIComponent).join('/');
