import type { FunctionRow } from './host';

export function formatFunctionTable(rows: FunctionRow[]): string {
  const header: FunctionRow = { name: 'FUNCTION', trigger: 'TRIGGER', detail: 'ROUTE / SCHEDULE / QUEUE', authLevel: 'AUTH' };
  const all = [header, ...rows];
  const w = {
    name: Math.max(...all.map((r) => r.name.length)),
    trigger: Math.max(...all.map((r) => r.trigger.length)),
    detail: Math.max(...all.map((r) => r.detail.length)),
  };
  return all
    .map((r) => `  ${r.name.padEnd(w.name)}  ${r.trigger.padEnd(w.trigger)}  ${r.detail.padEnd(w.detail)}  ${r.authLevel ?? ''}`.trimEnd())
    .join('\n');
}
