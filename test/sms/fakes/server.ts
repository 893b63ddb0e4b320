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

/** The scripted error of `Script`, as a vendor packages it. */
export type ScriptedError = Extract<Script, { error: string }>;

/** How a vendor answers each script `play` can meet; the rest of the playing is common. */
export interface ScriptAnswers {
  /** The vendor's answer for a scripted error code (noting it among the refusals). */
  error(script: ScriptedError): Handled;
  /** Body of a bare HTTP failure, as the gateway in front of the vendor sends it (HTML). */
  gatewayBody: string;
  /** The vendor's answer once the message has gone out. */
  ok(): Handled;
}

/** What every vendor stand-in gives its tests; `Delivery` is the vendor's view of a message sent. */
export interface VendorFake<Delivery> extends FakeServer {
  /** Messages gone out, in order. */
  delivered: Delivery[];
  /** Error codes answered, in order (checks that failed and scripted errors). */
  refusals: string[];
  /** Requests received, accepted or not. */
  readonly requests: number;
  /** Scripts the next accepted requests' answers, one each. */
  next(...s: Script[]): void;
}

/**
 * The state every vendor stand-in keeps (deliveries, refusals, scripted answers, requests
 * counted) and the playing of the scripts; the vendor file keeps its checks and answers.
 */
export class VendorState<Delivery> {
  readonly delivered: Delivery[] = [];
  readonly refusals: string[] = [];
  private readonly scripts: Script[] = [];
  private requests = 0;

  /**
   * Answers a request that passed every check, as the next script says (see `Script`);
   * `deliver` records the message as gone out, and is called only when it has.
   */
  play(deliver: () => void, answers: ScriptAnswers): Handled {
    const script = this.scripts.shift();
    if (script === 'hang' || script === 'close') {
      deliver();
      return script;
    }
    if (script && 'error' in script) return answers.error(script);
    if (script && 'http' in script) {
      if (script.deliver) deliver();
      return { status: script.http, body: answers.gatewayBody, contentType: 'text/html' };
    }
    deliver();
    return answers.ok();
  }

  /** Starts the server; every request is counted, then given to `handle`. */
  async serve(handle: (req: FakeRequest) => Handled): Promise<VendorFake<Delivery>> {
    const server = await startFakeServer((req) => {
      this.requests += 1;
      return handle(req);
    });
    const state = this;
    return {
      url: server.url,
      port: server.port,
      delivered: this.delivered,
      refusals: this.refusals,
      get requests() {
        return state.requests;
      },
      next: (...s: Script[]) => {
        this.scripts.push(...s);
      },
      close: server.close,
    };
  }
}

export const json = (status: number, value: unknown): FakeAnswer => ({ status, body: JSON.stringify(value) });

/** Mainland mobiles as every vendor here validates them. */
export const MAINLAND = /^1[3-9]\d{9}$/;
