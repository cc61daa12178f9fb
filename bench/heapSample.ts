// Samples what a process allocates over its whole life, garbage included (V8's sampling heap
// profiler with the objects minor and major GCs collected kept in the profile), and writes the
// profile as `<BENCH_HEAP_SAMPLE_DIR>/<pid>.heapprofile` when the process exits. Loaded into the
// bench's service children with `--import`, BENCH_HEAP_SAMPLE_DIR naming an existing folder:
//   BENCH_HEAP_SAMPLE_DIR=<folder> \
//   BENCH_SERVICE_NODE_FLAGS="--max-semi-space-size=8 --expose-gc --import=$PWD/bench/heapSample.ts" \
//   node bench/latencySplit.ts 40 30 4096
// then `node bench/heapSummary.ts <folder>/<pid>.heapprofile` for bytes by package. A measuring tool
// ("The log's redaction net in one pass"); it does nothing unless BENCH_HEAP_SAMPLE_DIR is set.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_HEAP_SAMPLE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
  process.on('exit', () => {
    // An in-thread inspector session answers synchronously, so this runs within the exit handler.
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (err) console.error(`heapSample: ${err.message}`);
      else writeFileSync(join(dir, `${process.pid}.heapprofile`), JSON.stringify(result.profile));
    });
  });
}
