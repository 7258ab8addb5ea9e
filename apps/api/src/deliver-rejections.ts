import type { IncomingMessage } from "node:http";
import type { HttpBindings } from "@hono/node-server";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./types";

export interface DrainLimits {
  /** The longest the rest of a refused body is read after the answer went out. */
  ms: number;
  /** The most bytes of it read before the connection is closed anyway. */
  bytes: number;
  /** A client that sends less than quietBytes for quietMs has stopped (or only trickles): close now. */
  quietMs: number;
  quietBytes: number;
}

/**
 * Long enough for a client that writes its whole body before it reads (many do) to finish a body a little
 * over a limit and read the answer; short and small enough that a client pushing 300 MB costs nothing but a
 * few milliseconds of discarded reads.
 */
export const DRAIN_LIMITS: DrainLimits = {
  ms: 2_000,
  bytes: 8 * 1024 * 1024,
  quietMs: 250,
  quietBytes: 16 * 1024,
};

/**
 * An answer given before the request body was read to its end (413, 400, 408, an upload that failed) must
 * reach the client. Closing the socket with unread bytes in it makes the kernel send a reset, which can
 * overtake the answer, and a keep-alive answer invites the client to reuse a connection whose stream is
 * mid-body. So such an answer says `Connection: close`, and its last byte is held back until the rest of the
 * body has been read and discarded, within DrainLimits: the client has the whole answer (Content-Length)
 * while the server still reads, and only then does node:http close the connection.
 *
 * Only under @hono/node-server (c.env.incoming); app.request() in tests has no socket to protect.
 */
export function deliverRejections(limits: DrainLimits = DRAIN_LIMITS): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
    if (!incoming || incoming.complete || incoming.readableEnded) return;
    c.header("Connection", "close");
    // A success that left some of its body unread (none of ours does) is not held back.
    if (c.res.status < 400 || !c.res.body) return;
    const answer = new Uint8Array(await c.res.arrayBuffer());
    const drained = drainBody(incoming, limits);
    const headers = new Headers(c.res.headers);
    headers.set("Content-Length", String(answer.byteLength));
    c.res = new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(answer);
        },
        async pull(controller) {
          await drained;
          controller.close();
        },
      }),
      { status: c.res.status, headers },
    );
  };
}

/** Reads and discards what is left of the body; resolves when it ended or a limit was reached. */
export function drainBody(incoming: IncomingMessage, limits: DrainLimits): Promise<void> {
  return new Promise<void>((resolve) => {
    let seen = 0;
    let sinceQuiet = 0;
    const done = () => {
      clearTimeout(total);
      clearTimeout(quiet);
      incoming.off("data", onData);
      incoming.off("end", done);
      incoming.off("close", done);
      incoming.off("error", done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      sinceQuiet += chunk.length;
      if (seen > limits.bytes) done();
      else if (sinceQuiet >= limits.quietBytes) {
        sinceQuiet = 0;
        quiet.refresh();
      }
    };
    const total = setTimeout(done, limits.ms);
    const quiet = setTimeout(done, limits.quietMs);
    incoming.on("data", onData);
    incoming.once("end", done);
    incoming.once("close", done);
    incoming.once("error", done);
    incoming.resume();
  });
}
