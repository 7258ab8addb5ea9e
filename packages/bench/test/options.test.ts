import { describe, expect, it } from "vitest";
import {
  combinations,
  intList,
  medians,
  parseServerTiming,
  positive,
  UsageError,
  variantLabel,
} from "../src/options.js";

describe("intList", () => {
  it("reads a comma list in the order given, spaces allowed; absent is undefined", () => {
    expect(intList("1,2,4,8", "classify-batch", 1)).toEqual([1, 2, 4, 8]);
    expect(intList(" 5, 0 ,2", "classify-wait", 0)).toEqual([5, 0, 2]);
    expect(intList("16", "worker-batch", 1)).toEqual([16]);
    expect(intList(undefined, "worker-batch", 1)).toBeUndefined();
  });

  it.each([
    ["0", 1],
    ["-1", 0],
    ["1.5", 1],
    ["", 1],
    ["1,,2", 1],
    ["two", 1],
    ["1,2,1", 1],
  ])("refuses %j (min %i) with a usage error naming the option", (value, min) => {
    expect(() => intList(value, "classify-wait", min)).toThrow(UsageError);
    expect(() => intList(value, "classify-wait", min)).toThrow(/--classify-wait/);
  });
});

it("positive accepts fractions and refuses zero, negatives and words", () => {
  expect(positive("2.5", "seconds")).toBe(2.5);
  expect(positive(undefined, "seconds")).toBeUndefined();
  for (const bad of ["0", "-3", "ten", ""]) expect(() => positive(bad, "seconds")).toThrow(UsageError);
});

describe("combinations", () => {
  it("crosses the given dimensions, the first varying slowest, and skips absent ones", () => {
    expect(combinations({ batch: [1, 8], wait: [0, 2], threads: undefined })).toEqual([
      { batch: 1, wait: 0 },
      { batch: 1, wait: 2 },
      { batch: 8, wait: 0 },
      { batch: 8, wait: 2 },
    ]);
    expect(combinations({ batch: undefined, wait: [5] })).toEqual([{ wait: 5 }]);
  });

  it("is one empty variant when nothing is swept (the service's defaults)", () => {
    expect(combinations({ batch: undefined, chunk: undefined })).toEqual([{}]);
  });

  it("labels a variant by the settings it sets, in the names' order", () => {
    const names = { batch: "batch", wait: "wait", threads: "threads" };
    expect(variantLabel({ wait: 0, batch: 4 }, names)).toBe("batch 4 wait 0");
    expect(variantLabel({}, names)).toBe("");
  });
});

describe("parseServerTiming", () => {
  it("reads name;dur=ms entries, ignoring descriptions, malformed and duration-less ones", () => {
    expect(
      parseServerTiming('read;dur=0.42, wait;dur=2, infer;desc="session.run";dur=35.10, cache, x;dur=abc'),
    ).toEqual({ read: 0.42, wait: 2, infer: 35.1 });
    expect(parseServerTiming(null)).toEqual({});
  });
});

it("medians takes each key's middle value over the records that have it", () => {
  expect(
    medians([
      { app: 40, http: 3 },
      { app: 50, http: 5 },
      { app: 42, http: 4, wait: 2 },
      { app: 90, http: 8 },
    ]),
  ).toEqual({ app: 46, http: 4.5, wait: 2 });
  expect(medians([])).toEqual({});
});
