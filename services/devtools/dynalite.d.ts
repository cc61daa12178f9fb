// dynalite ships no typings; this declares the part the embedded store uses.
declare module 'dynalite' {
  import type { Server } from 'node:http';
  /** dynalite's options: `path` persists to a LevelDB folder; absent keeps everything in memory. */
  interface DynaliteOptions {
    path?: string;
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
  }
  /** Creates an (unstarted) HTTP server speaking the DynamoDB API. */
  export default function dynalite(options?: DynaliteOptions): Server;
}
