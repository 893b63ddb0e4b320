/**
 * BullMQ's add of a job, built by BullMQ once and stamped per job afterwards.
 *
 * The issue script carries BullMQ's own add (addStandardJob) as its enqueue step. Building that
 * command with BullMQ's Job for every GET /sms_codes/ (options checked, two msgpack encodings,
 * the argument list) was ~5 % of a web process's main thread in the profile, for arguments that
 * differ between two jobs only in the job id, the creation time and the data. So BullMQ builds
 * the command once; each job copies it with its own id and time written where BullMQ wrote
 * them, and its data. Before the template is used it must reproduce, byte for byte, a second
 * command BullMQ built for another id, time and data; a BullMQ that encodes these otherwise
 * (another version, another layout) fails that check and every job is built by BullMQ again.
 */

export type Arg = string | Buffer;

/** What BullMQ sent for one job: the command (script name) and its keys then arguments. */
export interface RecordedAdd {
  command: string;
  args: Arg[];
}

/** The id, time and data BullMQ was given for a recorded add. */
export interface AddInputs {
  id: string;
  timestampMs: number;
  data: string;
}

interface Spot {
  arg: number;
  offset: number;
}

export interface AddTemplate {
  command: string;
  /** The arguments of a job with this id, creation time and data (JSON, as BullMQ writes it). */
  stamp(id: string, timestampMs: number, data: string): Arg[];
}

/** msgpack's float 64 (0xcb, then big-endian IEEE 754): how BullMQ's packer writes a ms time. */
function float64(ms: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0xcb;
  b.writeDoubleBE(ms, 1);
  return b;
}

function spotsOf(args: Arg[], needle: Buffer): Spot[] {
  const spots: Spot[] = [];
  args.forEach((arg, i) => {
    if (!Buffer.isBuffer(arg)) return;
    for (let at = arg.indexOf(needle); at !== -1; at = arg.indexOf(needle, at + needle.length)) {
      spots.push({ arg: i, offset: at });
    }
  });
  return spots;
}

const sameArgs = (a: Arg[], b: Arg[]) =>
  a.length === b.length &&
  a.every((x, i) => {
    const y = b[i];
    if (typeof x === 'string' || typeof y === 'string') return x === y;
    return y !== undefined && x.equals(y);
  });

/**
 * A template from one recorded add, checked against a second; undefined when stamping the first
 * does not give exactly the second (then BullMQ builds every add itself).
 */
export function addTemplate(
  first: RecordedAdd & AddInputs,
  second: RecordedAdd & AddInputs,
): AddTemplate | undefined {
  if (first.command !== second.command || first.id.length !== second.id.length) return undefined;
  const { command, args } = first;
  const idSpots = spotsOf(args, Buffer.from(first.id, 'latin1'));
  const timeSpots = spotsOf(args, float64(first.timestampMs));
  const dataAt = args.indexOf(first.data);
  // The data must be an argument of its own, and the id and time must be somewhere.
  const dataOwn = dataAt !== -1 && args.lastIndexOf(first.data) === dataAt;
  if (!dataOwn || idSpots.length === 0 || timeSpots.length === 0) return undefined;
  const patched = new Set([...idSpots, ...timeSpots].map((s) => s.arg));
  const idLength = first.id.length;

  const stamp = (id: string, timestampMs: number, data: string): Arg[] => {
    if (id.length !== idLength) throw new RangeError(`a job id of ${idLength} characters is expected`);
    const out = args.slice();
    for (const i of patched) out[i] = Buffer.from(args[i] as Buffer);
    for (const s of idSpots) (out[s.arg] as Buffer).write(id, s.offset, 'latin1');
    for (const s of timeSpots) (out[s.arg] as Buffer).writeDoubleBE(timestampMs, s.offset + 1);
    out[dataAt] = data;
    return out;
  };
  if (!sameArgs(stamp(second.id, second.timestampMs, second.data), second.args)) return undefined;
  return { command, stamp };
}
