/** Small DOM helpers shared by the pages. */

/** The element with this id, checked to be of the expected kind (the HTML and the script go together). */
export function byId<T extends HTMLElement>(id: string, kind: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof kind)) throw new Error(`#${id} is missing or not a ${kind.name}`);
  return element;
}

/**
 * An input with its message line (`#<id>-error`, an aria-live region the input names in its
 * aria-describedby). A failed check marks the input aria-invalid and says why.
 */
export class Field {
  readonly input: HTMLInputElement;
  readonly message: HTMLElement;

  constructor(id: string) {
    this.input = byId(id, HTMLInputElement);
    this.message = byId(`${id}-error`, HTMLElement);
  }

  get value(): string {
    return this.input.type === 'password' ? this.input.value : this.input.value.trim();
  }

  get invalid(): boolean {
    return this.input.getAttribute('aria-invalid') === 'true';
  }

  /** Shows the problem and returns false, so a check can `return field.fail(…)`. */
  fail(text: string): false {
    this.input.setAttribute('aria-invalid', 'true');
    this.message.classList.remove('is-note');
    this.message.textContent = text;
    return false;
  }

  /** A neutral message (e.g. "sent"), not an error. */
  note(text: string): void {
    this.input.removeAttribute('aria-invalid');
    this.message.classList.add('is-note');
    this.message.textContent = text;
  }

  /** Clears the message and returns true. */
  pass(): true {
    this.input.removeAttribute('aria-invalid');
    this.message.classList.remove('is-note');
    this.message.textContent = '';
    return true;
  }
}

/** The value of a cookie the page may read (the `username` cookie), or null. */
export function cookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return null;
}

/** A random id for an image code, from the Web Crypto API (randomUUID needs a secure context). */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Disables a button while `work` runs, showing `busyText`; restores it afterwards. */
export async function whileBusy<T>(
  button: HTMLButtonElement,
  busyText: string,
  work: () => Promise<T>,
): Promise<T> {
  const text = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = busyText;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = text;
  }
}
