import { randomInt, randomUUID } from 'node:crypto';
import { Job, Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { type AddInputs, addTemplate, type RecordedAdd } from './add-template.js';

// BullMQ builds its commands without a connection: the recorded client answers instead.
const queue = new Queue('send-sms-code', {
  connection: { host: '127.0.0.1', port: 1, lazyConnect: true, maxRetriesPerRequest: 0 },
  prefix: 'meiduo-users-test',
});
afterAll(() => queue.close());

const options = {
  attempts: 3,
  backoff: { type: 'meiduo-jitter' },
  removeOnComplete: true,
  removeOnFail: { age: 604_800, count: 1000 },
};

/** What BullMQ itself sends to add a job with this id, time and data. */
async function bullmqAdd(id: string, timestampMs: number, data: object): Promise<RecordedAdd & AddInputs> {
  let recorded: RecordedAdd | undefined;
  const client = {
    runCommand(command: string, args: Array<string | Buffer>) {
      recorded = { command, args };
      return Promise.resolve(id);
    },
  };
  const job = new Job(queue, 'send-sms-code', data, { ...options, jobId: id }, id);
  job.timestamp = timestampMs;
  await job.addJob(client as unknown as Parameters<Job['addJob']>[0]);
  if (!recorded) throw new Error('BullMQ sent nothing');
  return { ...recorded, id, timestampMs, data: JSON.stringify(data) };
}

const sms = () => ({
  mobile: `138${randomInt(10_000_000, 99_999_999)}`,
  purpose: 'register',
  decisionId: randomUUID(),
});

describe('a stamped BullMQ add', () => {
  it('is byte for byte the add BullMQ builds for that id, time and data', async () => {
    const now = Date.now();
    const template = addTemplate(
      await bullmqAdd(randomUUID(), now - 5, sms()),
      await bullmqAdd(randomUUID(), now, sms()),
    );
    expect(template).toBeDefined();
    for (let i = 0; i < 50; i++) {
      const id = randomUUID();
      const at = now + randomInt(0, 400 * 24 * 3_600_000);
      const data = sms();
      const expected = await bullmqAdd(id, at, data);
      expect(template?.command).toBe(expected.command);
      expect(template?.stamp(id, at, JSON.stringify(data))).toEqual(expected.args);
    }
  });

  it('leaves the template untouched by a stamp', async () => {
    const now = Date.now();
    const first = await bullmqAdd(randomUUID(), now - 5, sms());
    const copy = first.args.map((a) => (Buffer.isBuffer(a) ? Buffer.from(a) : a));
    const template = addTemplate(first, await bullmqAdd(randomUUID(), now, sms()));
    template?.stamp(randomUUID(), now + 1000, '{}');
    expect(first.args).toEqual(copy);
  });

  it('is refused when the check does not come out the same: each add is then built by BullMQ', async () => {
    const now = Date.now();
    const first = await bullmqAdd(randomUUID(), now - 5, sms());
    const second = await bullmqAdd(randomUUID(), now, sms());
    // A BullMQ whose add changes in a way the stamp does not follow (here: the last argument).
    const last = second.args.length - 1;
    const moved = {
      ...second,
      args: second.args.map((a, i) => (i === last ? Buffer.concat([a as Buffer, Buffer.from([0])]) : a)),
    };
    expect(addTemplate(first, moved)).toBeUndefined();
    // Another command, or ids of another length.
    expect(addTemplate(first, { ...second, command: 'addPrioritizedJob:6' })).toBeUndefined();
    expect(addTemplate(first, await bullmqAdd('job-1', now, sms()))).toBeUndefined();
  });
});
