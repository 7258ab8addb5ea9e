import cliProgress from "cli-progress";

export interface Progress {
  /** Sets the number of images done so far. */
  update(done: number): void;
  stop(): void;
}

/**
 * A bar on stderr when it is a terminal; otherwise a line every few seconds, so logs of long
 * unattended runs still show progress without filling up with carriage returns.
 */
export function createProgress(total: number, label: string, quiet = false): Progress {
  if (quiet || total === 0) return { update() {}, stop() {} };
  const started = Date.now();
  const rate = (done: number) => (done / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1);
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} {percentage}% | {rate} img/s | eta {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: "0.0" });
    return {
      update(done) {
        bar.update(done, { rate: rate(done) });
      },
      stop() {
        bar.stop();
      },
    };
  }
  let last = 0;
  return {
    update(done) {
      if (Date.now() - last > 2000 || done === total) {
        last = Date.now();
        process.stderr.write(
          `${label}: ${done}/${total} (${((100 * done) / total).toFixed(0)}%, ${rate(done)} img/s)\n`,
        );
      }
    },
    stop() {},
  };
}
