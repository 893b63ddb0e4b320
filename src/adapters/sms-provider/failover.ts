import {
  type SendOutcome,
  type SendOutcomeKind,
  type SmsMessage,
  type SmsProvider,
  type SmsPurpose,
  sendsPurpose,
} from '../../domain/ports.js';

/** Outcomes after which the next vendor may send: this one certainly delivered nothing. */
const TRY_NEXT: ReadonlySet<SendOutcomeKind> = new Set(['transient', 'config_error']);

export interface DebugLog {
  debug(obj: object, msg: string): void;
}

/**
 * Tries the vendors in order within one attempt. The chain moves on only after a transient
 * or config_error outcome (nothing delivered); ok, unknown (may have delivered), a permanent
 * number error and a per-number rate limit (which a second vendor must not get around) stop
 * it. When every vendor fails, a transient outcome is preferred over the last one so that the
 * queue's backoff runs the chain again (a vendor that was briefly down gets another chance);
 * otherwise the last outcome is returned. Only the vendors with a template for the message's
 * purpose are in its chain (the chain sends the purposes any of them sends).
 */
export function createFailoverProvider(providers: readonly SmsProvider[], log?: DebugLog): SmsProvider {
  if (providers.length === 0) throw new Error('failover needs at least one provider');
  const all = providers.some((p) => p.purposes === undefined);
  const purposes = new Set<SmsPurpose>(providers.flatMap((p) => [...(p.purposes ?? [])]));
  return {
    name: providers.map((p) => p.name).join(','),
    ...(all ? {} : { purposes }),
    async send(message: SmsMessage): Promise<SendOutcome> {
      const chain = providers.filter((p) => sendsPurpose(p, message.purpose));
      if (chain.length === 0) {
        const name = providers.map((p) => p.name).join(',');
        return { kind: 'config_error', provider: name, detail: `no template for ${message.purpose}` };
      }
      let lastTransient: SendOutcome | undefined;
      let last: SendOutcome | undefined;
      for (const [i, provider] of chain.entries()) {
        const outcome = await provider.send(message);
        if (!TRY_NEXT.has(outcome.kind)) return outcome;
        last = outcome;
        if (outcome.kind === 'transient') lastTransient = outcome;
        if (i < chain.length - 1) {
          log?.debug(
            { provider: outcome.provider, outcome: outcome.kind, detail: outcome.detail },
            'sms vendor failed, trying the next one',
          );
        }
      }
      return (lastTransient ?? last) as SendOutcome;
    },
  };
}
