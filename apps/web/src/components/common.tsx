import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { describe, request } from "../api";

/** An error in words, announced to screen readers. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {describe(error)}
    </p>
  );
}

/** An image fetched with the API key (an <img src> cannot send it) and shown from an object URL. */
export function AuthImage({ src, alt, class: cls }: { src: string; alt: string; class?: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let objectUrl: string | null = null;
    let live = true;
    setUrl(null);
    setFailed(false);
    request(src)
      .then((res) => res.blob())
      .then((blob) => {
        if (!live) return;
        objectUrl = URL.createObjectURL(blob);
        setUrl(objectUrl);
      })
      .catch(() => live && setFailed(true));
    return () => {
      live = false;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [src]);
  if (failed) return <span class={`img-missing ${cls ?? ""}`}>image unavailable</span>;
  if (!url) return <span class={`img-loading ${cls ?? ""}`} aria-busy="true" />;
  return <img src={url} alt={alt} class={cls} />;
}

/** Runs `load` now and every `everyMs` while `active` says so; returns the latest value and error. */
export function usePoll<T>(
  load: () => Promise<T>,
  deps: unknown[],
  everyMs: number,
  active: (v: T) => boolean,
) {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const activeRef = useRef(active);
  activeRef.current = active;
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const v = await loadRef.current();
        if (!live) return;
        setValue(v);
        setError(null);
        if (activeRef.current(v)) timer = setTimeout(tick, everyMs);
      } catch (err) {
        if (!live) return;
        setError(err);
        timer = setTimeout(tick, everyMs * 3);
      }
    };
    setValue(null);
    void tick();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, deps);
  return { value, error, setValue };
}

export function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is passed in as children
    <label class="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : "–");
