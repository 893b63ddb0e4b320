/*
 * A local HTTP stand-in for an SMS vendor: node:http on 127.0.0.1, random port. Each vendor
 * fake supplies `handle`, which checks the request as the vendor would and returns the
 * answer. Tests script the next answers (`next`) to get any documented outcome on demand.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRequest {
  method: string;
  /** Path with the query string, as received. */
  url: string;
  /** Header names in lower case, as node:http gives them. */
  headers: IncomingHttpHeaders;
  body: string;
}

export interface FakeAnswer {
  status: number;
  body: string;
  contentType?: string;
}

/**
 * What the vendor does with the next request that passes its checks:
 * - `error`: answer with this documented error code (the fake packages it as the vendor does);
 * - `http`: answer with this bare HTTP status (a gateway failing); with `deliver` the message
 *   has gone out anyway (processed, then the answer failed);
 * - `hang`: deliver, then never answer (the client's timeout fires after sending);
 * - `close`: deliver, then drop the connection without answering.
 */
export type Script =
  | { error: string; in?: 'status' | 'error' }
  | { http: number; deliver?: boolean }
  | 'hang'
  | 'close';

export type Handled = FakeAnswer | 'hang' | 'close';

export interface FakeServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startFakeServer(handle: (req: FakeRequest) => Handled): Promise<FakeServer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = handle({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (answer === 'hang') return;
      if (answer === 'close') {
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status, {
        'content-type': answer.contentType ?? 'application/json;charset=utf-8',
      });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Scripted answers, consumed one per accepted request. */
export class ScriptQueue {
  private readonly queue: Script[] = [];
  push(...scripts: Script[]): void {
    this.queue.push(...scripts);
  }
  take(): Script | undefined {
    return this.queue.shift();
  }
}

export const json = (status: number, value: unknown): FakeAnswer => ({ status, body: JSON.stringify(value) });

/** Mainland mobiles as every vendor here validates them. */
export const MAINLAND = /^1[3-9]\d{9}$/;
