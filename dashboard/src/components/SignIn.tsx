"use client";

import { type FormEvent, useState } from "react";
import { store } from "@/lib/store";
import { useSelect } from "@/lib/use";

/**
 * Sign-in with an API key and secret. They stay in this tab's session storage and sign requests
 * here (Web Crypto); the secret is never sent anywhere.
 */
export default function SignIn({ onClose }: { onClose: () => void }) {
  const demo = useSelect((s) => s.demo);
  const [key, setKey] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const go = async (creds: { key: string; secret: string }) => {
    setBusy(true);
    setError(null);
    try {
      await store.signIn(creds);
      onClose();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void go({ key: key.trim(), secret: secret.trim() });
  };

  return (
    <div className="fixed inset-0 z-10 flex items-center justify-center bg-black/60" onClick={onClose}>
      <form
        className="panel flex w-[360px] flex-col gap-2 p-4"
        onSubmit={submit}
        onClick={(e) => e.stopPropagation()}
        aria-label="Sign in"
        data-testid="sign-in"
      >
        <h2 className="text-[15px] font-semibold">Sign in with an API key</h2>
        <p className="text-[12px] text-dim">
          The secret stays in this browser tab (session storage) and only signs requests; it is never sent.
        </p>
        <label className="flex flex-col gap-0.5">
          <span className="text-[11px] text-dim">API key</span>
          <input className="field num" value={key} onChange={(e) => setKey(e.target.value)} autoFocus data-testid="sign-in-key" />
        </label>
        <label className="flex flex-col gap-0.5">
          <span className="text-[11px] text-dim">Secret</span>
          <input
            className="field num"
            type="password"
            value={secret}
            onChange={(e) => setSecret(e.target.value)}
            data-testid="sign-in-secret"
          />
        </label>
        {error && <p className="text-down" data-testid="sign-in-error">{error}</p>}
        <div className="flex gap-2">
          <button type="submit" disabled={busy} className="flex-1 rounded bg-[#2b3b5e] py-1.5 hover:bg-[#34487a]">
            Sign in
          </button>
          <button type="button" className="tab" onClick={onClose}>
            Cancel
          </button>
        </div>
        {demo && (
          <button
            type="button"
            className="rounded border border-edge py-1.5 text-dim hover:text-ink"
            onClick={() => void go(demo)}
            data-testid="try-demo"
          >
            Try the demo account
          </button>
        )}
      </form>
    </div>
  );
}
