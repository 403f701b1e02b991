import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The V8 heap a Function app instance gets. Node sizes V8's heap from the memory it may use, and inside a
 * memory-limited container (a Flex Consumption instance) that is the container's limit, not the host's
 * (`uv_get_constrained_memory`). A benchmark run on a 24 GB workstation therefore gets a 4 GB old
 * generation and 16 MB semi-spaces, where the 2,048 MB instance the app is deployed on gets 1 GB and
 * 8 MB: younger garbage is collected sooner there, so peak RSS is lower. The benchmark gives each
 * contender the heap of the deployed instance by passing the same sizes as flags.
 *
 * V8's rule (`Heap::HeapSizeFromPhysicalMemory`, 64-bit without pointer compression, as Node ships):
 * old generation = memory / 4 × 2, capped at 4 GB; semi-space = old / 128 (old / 256 up to 256 MB),
 * within 1–16 MB. Checked on this machine under cgroup memory limits, Node 20.20 and 22.23 alike:
 * 512 MB → 256 MB + 1 MB semi-space, 1,024 → 512 + 4, 2,048 → 1,024 + 8, 4,096 → 2,048 + 16, the same
 * `heap_size_limit` as these flags give.
 */
export interface InstanceHeap {
  instanceMemoryMb: number;
  maxOldSpaceMb: number;
  maxSemiSpaceMb: number;
  flags: string[];
}

const MB = 1;
const OLD_GENERATION_CAP = 4096 * MB;
const LOW_MEMORY_OLD_GENERATION = 256 * MB;

export function instanceHeap(instanceMemoryMb: number): InstanceHeap {
  if (!Number.isInteger(instanceMemoryMb) || instanceMemoryMb < 256) throw new Error(`instance memory must be a whole number of MB ≥ 256, not ${instanceMemoryMb}`);
  const old = Math.min((instanceMemoryMb / 4) * 2, OLD_GENERATION_CAP);
  const ratio = old <= LOW_MEMORY_OLD_GENERATION ? 256 : 128;
  const semi = Math.min(16, Math.max(1, Math.ceil(old / ratio)));
  return {
    instanceMemoryMb,
    maxOldSpaceMb: old,
    maxSemiSpaceMb: semi,
    flags: [`--max-old-space-size=${old}`, `--max-semi-space-size=${semi}`],
  };
}

/** The deployment's instance memory: `instanceMemoryMB`'s default in `infra/main.bicep`. */
export function deployedInstanceMemoryMb(root: string): number {
  const bicep = readFileSync(path.join(root, 'infra', 'main.bicep'), 'utf8');
  const m = /^param\s+instanceMemoryMB\s+int\s*=\s*(\d+)/m.exec(bicep);
  if (!m) throw new Error('infra/main.bicep declares no default for instanceMemoryMB');
  return Number(m[1]);
}
