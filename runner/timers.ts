import { Cron } from 'croner';
import type { Registration } from './coreApi';
import type { InvocationResult, Invoker } from './invoker';

/**
 * NCRONTAB as Azure Functions reads it: six fields with seconds first, or five (minute first), in UTC.
 * The TimeSpan form ("00:05:00") works only on dedicated plans, not on Flex Consumption, so it is refused.
 */
export function parseNcrontab(schedule: string): Cron {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new Error(`Schedule "${schedule}" must have 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5.`);
  }
  return new Cron(schedule, { paused: true, timezone: 'UTC' });
}

export interface TimerLog {
  (level: 'info' | 'warn' | 'error', message: string): void;
}

/**
 * Fires a timer-triggered function on its schedule. Like the host's singleton lock, a run that is still
 * going when the next is due makes that occurrence be skipped, not overlapped.
 */
export class TimerRunner {
  private cron: Cron | undefined;
  private running: Promise<void> | undefined;
  private last: Date | undefined;

  constructor(
    private readonly reg: Registration,
    private readonly triggerBindingName: string,
    private readonly schedule: string,
    private readonly runOnStartup: boolean,
    private readonly invoker: Invoker,
    private readonly log: TimerLog,
    private readonly onOutputs: (result: InvocationResult) => Promise<void>,
  ) {}

  start(): void {
    parseNcrontab(this.schedule);
    this.cron = new Cron(this.schedule, { timezone: 'UTC', protect: true }, () => {
      void this.fire(false);
    });
    if (this.runOnStartup) void this.fire(false);
  }

  nextRun(): Date | null {
    return this.cron?.nextRun() ?? parseNcrontab(this.schedule).nextRun();
  }

  async stop(): Promise<void> {
    this.cron?.stop();
    await this.running;
  }

  /** Runs the function now (the host's admin "run" endpoint does the same for non-HTTP functions). */
  fire(manual: boolean): Promise<void> {
    if (this.running) {
      this.log('warn', `${this.reg.metadata.name}: previous run still in progress; skipping this occurrence`);
      return this.running;
    }
    const now = new Date();
    const next = this.nextRun();
    const payload = {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: { Last: (this.last ?? now).toISOString(), Next: next?.toISOString() ?? null, LastUpdated: now.toISOString() },
      IsPastDue: false,
    };
    this.last = now;
    this.running = this.invoker
      .invoke(this.reg, { triggerBindingName: this.triggerBindingName, data: { json: JSON.stringify(payload) } })
      .then((result) => this.onOutputs(result))
      .catch((err: unknown) => this.log('error', `${this.reg.metadata.name}${manual ? ' (manual run)' : ''} failed: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}
