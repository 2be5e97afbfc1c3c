"use client";

import { useSelect } from "@/lib/use";

const LOOK = {
  connecting: ["bg-amber-400", "connecting"],
  live: ["bg-up", "live"],
  reconnecting: ["bg-down", "reconnecting"],
  stale: ["bg-amber-400", "stale"],
} as const;

/** The connection's state, always on screen. */
export default function StatusBadge() {
  const status = useSelect((s) => s.status);
  const [dot, label] = LOOK[status];
  return (
    <span className="flex items-center gap-1.5 text-dim" data-testid="status" data-status={status} role="status">
      <span className={`inline-block h-2 w-2 rounded-full ${dot}`} />
      <span className="w-[84px]">{label}</span>
    </span>
  );
}
