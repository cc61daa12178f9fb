// Queue operations: what an operator sees and does on a service's queues, shared by the
// `care-relay` command line and the services' web console. Every function takes its inputs
// injected (`OpsDeps`: an SQS client and the service's resolved queues; for actions also an
// `AuditSink` and the actor), so a running service calls it with its runtime's client, queues
// and audit trail, and the CLI with its own. `queueStatus` gives, per logical queue, the depth of
// the main queue, its DLQ and its quarantine queue (visible, in flight, delayed), and for the two
// hold queues the age of the oldest message and counts by reason code. `listHeld` and
// `showHeld` return metadata of held messages (`HeldMessageInfo`: envelope id, reason, signer
// fingerprint, sent / first and last receive, receive count, FIFO group), never a body: the types
// have no field for one. `redriveHeld` (back to the main queue: same body and wire attributes, same
// FIFO group, fresh deduplication id; the consumer opens and checks it again) and `purgeHeld`
// (delete) act on a selection (`ids`, `reasons`), support `dryRun`, report progress through
// `onProgress`, and record one audit line per message acted on (`message.redriven`,
// `message.purged`). Inspection receives messages (they are hidden while it runs, their receive
// count goes up) and releases them at the end. Failures are `OpsError` (`CR_OPS_*`).
export { OPS_ERRORS, OpsError, type OpsErrorCode } from './errors.ts';
export { checkSelection, matches, purgeHeld, redriveAttributes, redriveHeld } from './heldActions.ts';
export { heldInfo } from './heldScan.ts';
export { inspectHeld, listHeld, MAX_INSPECT, queueDepth, queueStatus, showHeld, type HeldInspection, type ListHeldOptions, type QueueStatusOptions } from './inspect.ts';
export {
  HOLD_ROLES,
  REASON_MAX_RECEIVES,
  type HeldActionItem,
  type HeldActionOptions,
  type HeldActionResult,
  type HeldMessageInfo,
  type HeldSelection,
  type HoldRole,
  type OpsDeps,
  type OpsProgress,
  type QueueDepthInfo,
  type QueueStatus,
  type ScanCoverage,
} from './types.ts';
