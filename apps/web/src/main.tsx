import "./styles.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiFailure, request, session, setUnauthorizedHandler } from "./api";
import { ErrorBox } from "./components/common";
import { BatchPage } from "./pages/batch";
import { BatchesPage } from "./pages/batches";
import { ClassifyPage } from "./pages/classify";
import { ModelPage } from "./pages/model";
import { ReviewPage } from "./pages/review";
import { StatsPage } from "./pages/stats";
import type { Me } from "./types";

const NAV = [
  ["#/", "Classify"],
  ["#/batches", "Batches"],
  ["#/review", "Review"],
  ["#/stats", "Statistics"],
  ["#/model", "Model"],
] as const;

const currentRoute = () => location.hash.replace(/^#/, "") || "/";

function Page({ route, me }: { route: string; me: Me }) {
  const batch = /^\/batches\/([0-9a-f-]{36})$/i.exec(route);
  if (batch?.[1]) return <BatchPage id={batch[1]} me={me} />;
  if (route === "/batches") return <BatchesPage />;
  if (route === "/review") return <ReviewPage me={me} />;
  if (route === "/stats") return <StatsPage me={me} />;
  if (route === "/model") return <ModelPage me={me} />;
  return <ClassifyPage me={me} />;
}

/** Asks for the API key once; it lives in sessionStorage until the tab closes or "Change key". */
function KeyForm({ onKey, error }: { onKey: (key: string) => void; error: unknown }) {
  const [key, setKey] = useState("");
  return (
    <main class="narrow">
      <h1>garbage-sort</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onKey(key.trim());
        }}
      >
        <label class="field">
          <span>API key</span>
          <input
            type="password"
            name="apiKey"
            autoComplete="off"
            required
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
          />
        </label>
        <p class="hint">Kept in this browser tab only (session storage), sent as a Bearer token.</p>
        <button type="submit">Sign in</button>
      </form>
      <ErrorBox error={error} />
    </main>
  );
}

function App() {
  const [route, setRoute] = useState(currentRoute());
  const [me, setMe] = useState<Me | null>(null);
  const [needKey, setNeedKey] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const signIn = async (key: string | null) => {
    try {
      // A key is checked before it is kept; without one the API may be open (no keys configured).
      const who = (await (await request("/v1/me", {}, key)).json()) as Me;
      session.setKey(key);
      setMe(who);
      setNeedKey(false);
      setError(null);
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) {
        session.setKey(null);
        setNeedKey(true);
        if (key) setError(err);
      } else setError(err);
    }
  };

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener("hashchange", onHash);
    setUnauthorizedHandler(() => {
      session.setKey(null);
      setMe(null);
      setNeedKey(true);
    });
    void signIn(session.key());
    return () => removeEventListener("hashchange", onHash);
  }, []);

  if (needKey) return <KeyForm onKey={(k) => void signIn(k)} error={error} />;
  if (!me) return <main class="narrow">{error ? <ErrorBox error={error} /> : <p>Loading…</p>}</main>;
  const section = `/${route.split("/")[1] ?? ""}`;
  return (
    <>
      {/* A button, not a #main link: the hash is the router's. */}
      <button type="button" class="skip" onClick={() => document.getElementById("main")?.focus()}>
        Skip to content
      </button>
      <header>
        <nav aria-label="Main">
          <strong class="brand">garbage-sort</strong>
          <ul>
            {NAV.map(([href, label]) => {
              const current = href.slice(1) === section || (href === "#/" && section === "/");
              return (
                <li key={href}>
                  <a href={href} aria-current={current ? "page" : undefined}>
                    {label}
                  </a>
                </li>
              );
            })}
            <li>
              <a href="/docs">API</a>
            </li>
            {me.sites === null ? (
              <li>
                {/* The queue view asks for the key itself (HTTP Basic, any user name): a page cannot be opened with a header. */}
                <a href="/queues">Queue</a>
              </li>
            ) : null}
          </ul>
          <span class="who">
            {me.name ?? (session.key() ? "API key" : "open API")}
            {me.sites ? ` · ${me.sites.join(", ")}` : ""}
            {session.key() ? (
              <button
                type="button"
                class="link"
                onClick={() => {
                  session.setKey(null);
                  setMe(null);
                  setNeedKey(true);
                }}
              >
                Change key
              </button>
            ) : null}
          </span>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} me={me} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
