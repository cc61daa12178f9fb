// The one start/stop sequence of both services, with a real fastify server on a real port,
// a real emergency switch and consumers that record what is done to them.
import { createServer } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import { EmergencySwitch } from '../../../services/core/runtime/emergency.ts';
import { startServiceLifecycle, type ManagedConsumer } from '../../../services/core/runtime/lifecycle.ts';
import type { Runtime } from '../../../services/core/runtime/runtime.ts';
import type { Consumer } from '../../../services/core/transport/consumerTypes.ts';
import type { ReadinessCheck } from '../../../services/core/http/health.ts';

type Q = 'app-to-interface';

/** A consumer that writes each call into the shared journal. */
function recordingConsumer(name: string, journal: string[], stopMs = 20): Consumer {
  let running = false;
  return {
    start: () => void ((running = true), journal.push(`${name}.start`)),
    pause: () => void journal.push(`${name}.pause`),
    resume: () => void journal.push(`${name}.resume`),
    stop: async (options) => {
      journal.push(`${name}.stop(${options?.deadlineMs})`);
      await new Promise((r) => setTimeout(r, stopMs));
      running = false;
      journal.push(`${name}.stopped`);
    },
    get inFlightCount() {
      return 0;
    },
    get isRunning() {
      return running;
    },
    ready: () => running,
    health: () => ({ running, paused: false, inFlight: 0, consecutiveReceiveErrors: 0, lastReceiveError: undefined, lastReceiveAt: undefined }) as ReturnType<Consumer['health']>,
  };
}

/** Just what the lifecycle uses of a runtime: the emergency switch and close(). */
function fakeRuntime(journal: string[], emergency = false): Runtime<Q> {
  const audit = { record: async (_e: AuditEvent) => undefined };
  return { emergency: new EmergencySwitch(emergency, audit, 'test'), close: async () => void journal.push('runtime.close') } as unknown as Runtime<Q>;
}

interface Wired {
  server: FastifyInstance;
  consumers: ManagedConsumer[];
  running: ReadinessCheck;
}

function wiring(journal: string[], options: { emergency?: boolean } = {}) {
  const runtime = fakeRuntime(journal, options.emergency);
  let seen: Wired | undefined;
  const wire = async (_rt: Runtime<Q>, running: ReadinessCheck): Promise<Wired> => {
    const server = Fastify();
    server.get('/ready', async (_req, reply) => reply.code((await running()) ? 200 : 503).send());
    server.addHook('onClose', async () => void journal.push('server.closed'));
    seen = {
      server,
      consumers: [
        { consumer: recordingConsumer('a', journal), deadlineMs: 2000 },
        { consumer: recordingConsumer('b', journal), deadlineMs: 3000 },
      ],
      running,
    };
    journal.push(`wired(running=${await running()})`);
    return seen;
  };
  return { runtime: async () => runtime, wire, rt: runtime, wired: () => seen! };
}

async function busyPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const { port } = blocker.address() as { port: number };
  return { port, close: () => new Promise((r) => blocker.close(() => r())) };
}

describe('service lifecycle', () => {
  it('starts the runtime, wires, starts the consumers, listens, and only then reports ready', async () => {
    const journal: string[] = [];
    const w = wiring(journal);
    const service = await startServiceLifecycle({ runtime: w.runtime, wire: w.wire, httpDeadlineMs: 5000, listen: { port: 0, host: '127.0.0.1' } });
    expect(journal).toEqual(['wired(running=false)', 'a.start', 'b.start']);
    expect(service.running).toBe(true);
    const { port } = service.parts.server.server.address() as { port: number };
    expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);
    await service.stop();
  });

  it('stops in order: not ready, stop accepting, consumers with their deadlines, server closed, runtime last', async () => {
    const journal: string[] = [];
    const w = wiring(journal);
    const service = await startServiceLifecycle({ runtime: w.runtime, wire: w.wire, httpDeadlineMs: 5000, listen: { port: 0, host: '127.0.0.1' } });
    const { port } = service.parts.server.server.address() as { port: number };
    journal.length = 0;
    const stopping = service.stop();
    expect(service.running).toBe(false);
    expect(await w.wired().running()).toBe(false);
    await stopping;
    expect(journal.slice(0, 2)).toEqual(['a.stop(2000)', 'b.stop(3000)']);
    expect(journal.indexOf('server.closed')).toBeGreaterThan(-1);
    expect(journal.at(-1)).toBe('runtime.close');
    expect(journal.filter((e) => e === 'runtime.close')).toHaveLength(1);
    await expect(fetch(`http://127.0.0.1:${port}/ready`)).rejects.toThrow();
  });

  it('is idempotent: a second stop (SIGTERM then a test teardown) returns the same promise and closes nothing twice', async () => {
    const journal: string[] = [];
    const w = wiring(journal);
    const service = await startServiceLifecycle({ runtime: w.runtime, wire: w.wire, httpDeadlineMs: 5000, listen: false });
    const first = service.stop();
    const second = service.stop();
    expect(second).toBe(first);
    await Promise.all([first, second, service.stop()]);
    expect(journal.filter((e) => e === 'a.stop(2000)')).toHaveLength(1);
    expect(journal.filter((e) => e === 'server.closed')).toHaveLength(1);
    expect(journal.filter((e) => e === 'runtime.close')).toHaveLength(1);
  });

  it('starts the consumers paused in emergency mode; the switch pauses and resumes them, and nothing resumes after stop', async () => {
    const journal: string[] = [];
    const w = wiring(journal, { emergency: true });
    const service = await startServiceLifecycle({ runtime: w.runtime, wire: w.wire, httpDeadlineMs: 5000, listen: false });
    expect(journal).toEqual(['wired(running=false)', 'a.start', 'a.pause', 'b.start', 'b.pause']);
    await w.rt.emergency.set(false, { actor: 'test' });
    expect(journal.slice(-2)).toEqual(['a.resume', 'b.resume']);
    await w.rt.emergency.set(true, { actor: 'test' });
    expect(journal.slice(-2)).toEqual(['a.pause', 'b.pause']);
    await service.stop();
    journal.length = 0;
    await w.rt.emergency.set(false, { actor: 'test' });
    expect(journal).toEqual([]);
  });

  it('undoes a start that fails at listen (port taken): consumers stopped, runtime closed, the error rethrown', async () => {
    const journal: string[] = [];
    const w = wiring(journal);
    const taken = await busyPort();
    try {
      await expect(startServiceLifecycle({ runtime: w.runtime, wire: w.wire, httpDeadlineMs: 5000, listen: { port: taken.port, host: '127.0.0.1' } })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await taken.close();
    }
    expect(journal).toContain('a.stopped');
    expect(journal).toContain('b.stopped');
    expect(journal.at(-1)).toBe('runtime.close');
  });

  it('closes the runtime when the wiring fails (a bad token file), and rethrows that error', async () => {
    const journal: string[] = [];
    const w = wiring(journal);
    const failing = async (): Promise<Wired> => {
      throw new Error('APP_TOKENS_FILE: not valid JSON');
    };
    await expect(startServiceLifecycle({ runtime: w.runtime, wire: failing, httpDeadlineMs: 5000, listen: false })).rejects.toThrow('APP_TOKENS_FILE');
    expect(journal).toEqual(['runtime.close']);
  });
});
