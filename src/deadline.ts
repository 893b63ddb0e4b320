/**
 * Settles as `promise` does, or rejects with "`what` took longer than N ms" once the deadline
 * passes, whichever comes first. The timer is cleared when the promise settles and never keeps
 * the process alive; the promise itself is not cancelled (its late result is dropped).
 */
export function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
