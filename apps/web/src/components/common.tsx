import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { describe, request } from "../api";
import type { Me } from "../types";

/** An error in words, announced to screen readers. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {describe(error)}
    </p>
  );
}

/** True once the element has come within `margin` of the viewport (and from then on). */
function useSeen(enabled: boolean, margin = "300px") {
  const ref = useRef<HTMLSpanElement>(null);
  const [seen, setSeen] = useState(!enabled);
  useEffect(() => {
    const el = ref.current;
    if (seen || !el) return;
    if (typeof IntersectionObserver === "undefined") return setSeen(true);
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          setSeen(true);
          observer.disconnect();
        }
      },
      { rootMargin: margin },
    );
    observer.observe(el);
    return () => observer.disconnect();
  }, [seen]);
  return { ref, seen };
}

/**
 * An image fetched with the API key (an <img src> cannot send it) and shown from an object URL. `lazy`
 * waits until it is about to scroll into view, so a gallery of thousands fetches only what is looked at.
 */
export function AuthImage(props: { src: string; alt: string; class?: string; lazy?: boolean }) {
  const { src, alt, class: cls } = props;
  const { ref, seen } = useSeen(props.lazy ?? false);
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    if (!seen) return;
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
  }, [src, seen]);
  if (failed) return <span class={`img-missing ${cls ?? ""}`}>image unavailable</span>;
  if (!url) return <span ref={ref} class={`img-loading ${cls ?? ""}`} aria-busy="true" />;
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

/** The sites a key may pick: its own list, or every site with batches for a key that sees all. */
export function SiteSelect(props: { me: Me; value: string; onChange: (site: string) => void }) {
  const { me } = props;
  return (
    <Field label="Site">
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {me.sites?.length === 1 ? null : <option value="">all my sites</option>}
        {(me.sites ?? me.visibleSites).map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
    </Field>
  );
}
