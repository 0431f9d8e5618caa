/**
 * Shadow mode on the device: a candidate version is installed beside the active model (never
 * switching to it), runs on the same live requests after they are answered, and its agreement and
 * latency are reported in telemetry. A candidate that fails to install is reported, not retried.
 */
import type { DesiredModel, ErrorInfo, ReportedSlot } from '@edgefleet/protocol';
import { AgentError } from './errors.ts';
import type { LoadedModels } from './inference/loaded-models.ts';
import { type InstallerDeps, prepareModel } from './installer.ts';

type Candidate = NonNullable<DesiredModel['shadow']>;

interface ShadowState {
  want: Candidate;
  state: 'installing' | 'running' | 'failed';
  error?: ErrorInfo;
}

export class ShadowRunner {
  private readonly shadows = new Map<string, ShadowState>();

  constructor(private readonly deps: InstallerDeps & { models: LoadedModels; changed: () => void }) {}

  slots(): string[] {
    return [...this.shadows.keys()];
  }

  status(slot: string): NonNullable<ReportedSlot['shadow']> | null {
    const s = this.shadows.get(slot);
    return s
      ? { name: s.want.name, version: s.want.version, state: s.state, ...(s.error ? { error: s.error } : {}) }
      : null;
  }

  /** Make the slot's shadow match `want` (none when undefined). */
  async ensure(slot: string, want: Candidate | undefined): Promise<void> {
    const current = this.shadows.get(slot);
    if (!want) {
      if (current) {
        this.deps.models.clearShadow(slot);
        this.shadows.delete(slot);
        this.deps.logger.info({ slot, version: current.want.version }, 'shadow candidate removed');
        this.deps.changed();
      }
      return;
    }
    if (current && current.want.artifact.sha256 === want.artifact.sha256 && current.state !== 'installing')
      return;
    this.shadows.set(slot, { want, state: 'installing' });
    this.deps.changed();
    try {
      const prepared = await prepareModel(this.deps, slot, want, {
        dirPrefix: 'shadow-',
        installedVersion: undefined,
        rollbackTo: [],
        step: () => undefined,
      });
      this.deps.models.setShadow(slot, { version: want.version, session: prepared.session });
      this.shadows.set(slot, { want, state: 'running' });
      this.deps.logger.info(
        { slot, version: want.version },
        'shadow candidate running beside the active model',
      );
    } catch (error) {
      const transient = error instanceof AgentError && error.transient;
      this.shadows.set(slot, {
        want,
        state: transient ? 'installing' : 'failed',
        error: { code: (error as { code?: string }).code ?? 'INTERNAL', message: (error as Error).message },
      });
      this.deps.logger.warn(
        { slot, version: want.version, err: (error as Error).message },
        'shadow candidate could not be installed',
      );
    }
    this.deps.changed();
  }
}
