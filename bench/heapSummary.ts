// Bytes allocated by package in a heap profile written by bench/heapSample.ts:
// `node bench/heapSummary.ts <file.heapprofile> [top]`. Each sample is charged to the nearest frame
// on its stack that is not Node's own code: a package under node_modules, or the project's folder
// (services/core/log, …). A measuring tool ("The log's redaction net in one pass").
import { readFileSync } from 'node:fs';

interface HeapNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children?: HeapNode[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/heapSummary.ts <file.heapprofile> [top]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };

/** The package or project folder a script URL belongs to; undefined for Node's own code and natives. */
function ownerOf(url: string): string | undefined {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/((?:services|bench|test)\/(?:[^/]+\/)?[^/]+)\/[^/]+\.ts$/.exec(url);
  if (own) return own[1];
  return undefined;
}

const bytes = new Map<string, number>();
let total = 0;
const walk = (node: HeapNode, owners: Array<string | undefined>): void => {
  const here = [...owners, ownerOf(node.callFrame.url)];
  if (node.selfSize > 0) {
    total += node.selfSize;
    const owner = here.findLast((o) => o !== undefined) ?? 'node';
    bytes.set(owner, (bytes.get(owner) ?? 0) + node.selfSize);
  }
  for (const child of node.children ?? []) walk(child, here);
};
walk(profile.head, []);
console.log(`${(total / 1e6).toFixed(1)} MB sampled`);
for (const [owner, b] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 20))) {
  console.log(`${((b / total) * 100).toFixed(1).padStart(5)} %  ${(b / 1e6).toFixed(1).padStart(8)} MB  ${owner}`);
}
