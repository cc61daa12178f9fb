import type { FailingSince } from '../../core/alerts/failingSince.ts';
import type { EmrClient } from './emrClient.ts';

/**
 * The EMR client, reporting each attempt to `health`: a delivery resets it, a transient
 * failure or a refusal starts it (an EMR that refuses everything is failing too).
 */
export function trackedEmrClient(emr: EmrClient, health: FailingSince): EmrClient {
  return {
    async deliver(envelope, signal) {
      const outcome = await emr.deliver(envelope, signal);
      if (outcome.kind === 'delivered') health.success();
      else if (!signal.aborted) health.failure();
      return outcome;
    },
  };
}
