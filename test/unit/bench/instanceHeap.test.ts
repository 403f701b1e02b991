import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deployedInstanceMemoryMb, instanceHeap } from '../../../bench/hubspotSync/instanceHeap';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('benchmark contender heap (the deployed instance, not this machine)', () => {
  // Heap limits Node 20.20 and 22.23 chose by themselves inside cgroups with these memory limits (measured
  // on a development machine: `heap_size_limit` and the new space's size once grown).
  it.each([
    [512, 256, 1],
    [1024, 512, 4],
    [2048, 1024, 8],
    [4096, 2048, 16],
  ])('%i MB → old generation %i MB, semi-space %i MB', (memory, old, semi) => {
    const h = instanceHeap(memory);
    expect([h.maxOldSpaceMb, h.maxSemiSpaceMb]).toEqual([old, semi]);
    expect(h.flags).toEqual([`--max-old-space-size=${old}`, `--max-semi-space-size=${semi}`]);
  });

  it('caps at what V8 allows: 4 GB old generation, 16 MB semi-space', () => {
    const h = instanceHeap(32_768);
    expect([h.maxOldSpaceMb, h.maxSemiSpaceMb]).toEqual([4096, 16]);
  });

  it('the flags give Node the heap limit that a memory-limited container does (old + 3 semi-spaces)', () => {
    const h = instanceHeap(2048);
    const out = execFileSync(process.execPath, [...h.flags, '-e', 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'], { encoding: 'utf8' });
    // 1,048 MB: what Node reported inside a 2,048 MB cgroup.
    expect(Number(out) / 1024 / 1024).toBe(1048);
  });

  it('refuses a size no instance has', () => {
    expect(() => instanceHeap(0)).toThrow(/instance memory/);
    expect(() => instanceHeap(1.5)).toThrow(/instance memory/);
  });

  it('reads the instance memory from the deployment (infra/main.bicep)', () => {
    // One of Flex Consumption's instance sizes.
    expect([512, 2048, 4096]).toContain(deployedInstanceMemoryMb(ROOT));
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'heap-'));
    mkdirSync(path.join(tmp, 'infra'));
    writeFileSync(path.join(tmp, 'infra', 'main.bicep'), "param location string = 'westeurope'\nparam instanceMemoryMB int = 4096\n");
    expect(deployedInstanceMemoryMb(tmp)).toBe(4096);
    writeFileSync(path.join(tmp, 'infra', 'main.bicep'), 'param instanceMemoryMB int\n');
    expect(() => deployedInstanceMemoryMb(tmp)).toThrow(/no default/);
  });
});
