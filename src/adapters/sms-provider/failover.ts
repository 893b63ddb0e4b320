import type { SendOutcome, SendOutcomeKind, SmsMessage, SmsProvider } from '../../domain/ports.js';

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
 * otherwise the last outcome is returned.
 */
export function createFailoverProvider(providers: readonly SmsProvider[], log?: DebugLog): SmsProvider {
  if (providers.length === 0) throw new Error('failover needs at least one provider');
  return {
    name: providers.map((p) => p.name).join(','),
    async send(message: SmsMessage): Promise<SendOutcome> {
      let lastTransient: SendOutcome | undefined;
      let last: SendOutcome | undefined;
      for (const [i, provider] of providers.entries()) {
        const outcome = await provider.send(message);
        if (!TRY_NEXT.has(outcome.kind)) return outcome;
        last = outcome;
        if (outcome.kind === 'transient') lastTransient = outcome;
        if (i < providers.length - 1) {
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
