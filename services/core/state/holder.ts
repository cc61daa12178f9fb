import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** This process's holder id for leases in the state table: host, pid and a random part (a restart is a new holder). */
export function holderId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}
