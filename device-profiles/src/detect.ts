/**
 * Which profile a device is, from its facts. Each profile's `detect` rule is checked section by
 * section (platform, arch, board, accelerator, features); every section given must match, and the
 * most specific match wins (a board beats a bare arch, a board plus an accelerator beats the board).
 */
import { builtinProfiles } from './builtin.ts';
import { decodePiRevision, type HardwareFacts, parseCpuinfo } from './facts.ts';
import type { DetectRule, DeviceProfile } from './schema.ts';

export interface Detection {
  /** The best-matching profile, or null when none fits (e.g. a 32-bit ARM OS). */
  profileId: string | null;
  /** The evidence for the choice, and near misses worth telling the user about. */
  reasons: string[];
  /** Every profile that matched, most specific first. */
  candidates: { profileId: string; score: number }[];
}

const WEIGHT = { platform: 1, arch: 2, board: 10, accelerator: 5, feature: 3 } as const;

interface RuleResult {
  matched: boolean;
  score: number;
  evidence: string[];
  /** Set when the board matched but another section did not: worth explaining. */
  nearMiss?: string;
}

function boardEvidence(rule: NonNullable<DetectRule['board']>, facts: HardwareFacts): string | undefined {
  const cpu = facts.cpuinfo ? parseCpuinfo(facts.cpuinfo) : undefined;
  const model = facts.deviceTreeModel ?? cpu?.model;
  for (const pattern of rule.model ?? []) {
    if (model && new RegExp(pattern).test(model))
      return `${facts.deviceTreeModel ? 'device-tree model' : 'cpuinfo model'} "${model}" matches /${pattern}/`;
  }
  const compatible = facts.deviceTreeCompatible ?? [];
  const c = (rule.compatible ?? []).find((x) => compatible.includes(x));
  if (c) return `device-tree compatible lists "${c}"`;
  const pi = cpu?.revision ? decodePiRevision(cpu.revision) : undefined;
  if (pi && (rule.piRevisionTypes ?? []).some((t) => Number.parseInt(t, 16) === pi.type))
    return `Raspberry Pi revision ${cpu?.revision} (board type 0x${pi.type.toString(16)}, ${pi.memoryMb} MB)`;
  for (const f of rule.files ?? []) {
    const text = facts.files?.[f.path];
    if (text !== undefined && new RegExp(f.pattern).test(text)) return `${f.path} matches /${f.pattern}/`;
  }
  return undefined;
}

const USB_NAMES: Record<string, string> = {
  '1a6e:089a': 'Coral USB Accelerator, firmware not loaded yet',
  '18d1:9302': 'Coral USB Accelerator, firmware loaded',
};

function acceleratorEvidence(
  rule: NonNullable<DetectRule['accelerator']>,
  facts: HardwareFacts,
): string | undefined {
  const usb = (rule.usbIds ?? []).find((id) => (facts.usbIds ?? []).includes(id));
  if (usb) return `USB device ${usb}${USB_NAMES[usb] ? ` (${USB_NAMES[usb]})` : ''}`;
  const dev = (rule.devices ?? []).find((d) => (facts.devices ?? []).includes(d));
  if (dev) return `device node ${dev} present`;
  return undefined;
}

function evaluate(rule: DetectRule, facts: HardwareFacts): RuleResult {
  const evidence: string[] = [];
  let score = 0;
  if (!rule.platform.includes(facts.platform as never)) return { matched: false, score: 0, evidence };
  score += WEIGHT.platform;
  const board = rule.board ? boardEvidence(rule.board, facts) : undefined;
  if (rule.board && !board) return { matched: false, score: 0, evidence };
  if (board) {
    evidence.push(board);
    score += WEIGHT.board;
  }
  const failed = (why: string): RuleResult => ({
    matched: false,
    score: 0,
    evidence,
    ...(board ? { nearMiss: why } : {}),
  });
  if (rule.arch) {
    if (!rule.arch.includes(facts.arch as never)) {
      const hint = facts.arch === 'arm' ? ' (a 32-bit OS; edgefleet needs a 64-bit OS)' : '';
      return failed(`arch is ${facts.arch}${hint}, not ${rule.arch.join('/')}`);
    }
    evidence.push(`arch ${facts.arch}`);
    score += WEIGHT.arch;
  }
  if (rule.accelerator) {
    const acc = acceleratorEvidence(rule.accelerator, facts);
    if (!acc) return failed('its accelerator was not found');
    evidence.push(acc);
    score += WEIGHT.accelerator;
  }
  for (const feature of rule.features ?? []) {
    if (!(facts.features ?? []).includes(feature)) return failed(`feature ${feature} missing`);
    evidence.push(`feature ${feature}`);
    score += WEIGHT.feature;
  }
  if (evidence.length === 0) evidence.push(`platform ${facts.platform}`);
  return { matched: true, score, evidence };
}

/** The profile these facts describe, with the evidence. Pure; `profiles` defaults to the built-ins. */
export function detectProfile(
  facts: HardwareFacts,
  profiles: readonly DeviceProfile[] = builtinProfiles,
): Detection {
  const results = profiles
    .filter((p) => p.detect)
    .map((p, order) => ({ p, order, r: evaluate(p.detect as DetectRule, facts) }));
  const matched = results
    .filter((x) => x.r.matched)
    .sort((a, b) => b.r.score - a.r.score || a.order - b.order);
  const best = matched[0];
  const nearMisses = results
    .filter((x) => x.r.nearMiss)
    .map((x) => `looks like ${x.p.id} (${x.r.evidence.join('; ')}) but ${x.r.nearMiss}`);
  const candidates = matched.map((x) => ({ profileId: x.p.id, score: x.r.score }));
  if (!best) {
    return {
      profileId: null,
      reasons: [`no profile matches ${facts.platform}/${facts.arch}`, ...nearMisses],
      candidates,
    };
  }
  // Near misses of more specific profiles explain why, say, a Pi was not taken as a Pi with a Coral.
  const moreSpecific = results
    .filter((x) => x.r.nearMiss && x.p.detect?.board && x.p.id !== best.p.id)
    .map((x) => `not ${x.p.id}: ${x.r.nearMiss}`);
  return { profileId: best.p.id, reasons: [...best.r.evidence, ...moreSpecific], candidates };
}
