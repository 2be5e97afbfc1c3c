import { describe, expect, it } from "vitest";
import { applyDiff, emptyBook, fromSnapshot, grouped, levels } from "@/lib/book";
import { toPlain } from "@/lib/decimal";

const snap = () =>
  fromSnapshot({
    seq: 10,
    bids: [
      ["100.00", "1.5"],
      ["99.50", "2"],
      ["99.49", "3"],
    ],
    asks: [
      ["100.10", "1"],
      ["101.00", "4"],
    ],
  });

describe("the book from a snapshot and diffs", () => {
  it("applies a diff that follows the snapshot: sets, adds and removes levels", () => {
    const b = snap();
    const r = applyDiff(b, {
      first_seq: 11,
      last_seq: 13,
      changes: [
        ["BUY", "100.00", "0.5"],
        ["SELL", "100.10", "0"],
        ["SELL", "100.05", "2"],
      ],
    });
    expect(r).toBe("applied");
    expect(b.seq).toBe(13);
    expect(levels(b)).toEqual({
      bids: [
        ["100.00", "0.5"],
        ["99.50", "2"],
        ["99.49", "3"],
      ],
      asks: [
        ["100.05", "2"],
        ["101.00", "4"],
      ],
    });
  });

  it("ignores a diff the snapshot already covers", () => {
    const b = snap();
    expect(applyDiff(b, { first_seq: 8, last_seq: 10, changes: [["BUY", "1.00", "9"]] })).toBe("stale");
    expect(b.seq).toBe(10);
    expect(b.bids.has("1.00")).toBe(false);
  });

  it("reports a gap and leaves the book untouched", () => {
    const b = snap();
    expect(applyDiff(b, { first_seq: 12, last_seq: 12, changes: [["BUY", "1.00", "9"]] })).toBe("gap");
    expect(b.seq).toBe(10);
    expect(b.bids.has("1.00")).toBe(false);
  });

  it("treats any diff before the first snapshot as a gap", () => {
    expect(applyDiff(emptyBook(), { first_seq: 1, last_seq: 1, changes: [] })).toBe("gap");
  });

  it("sorts levels by value, not by text", () => {
    const b = fromSnapshot({ seq: 1, bids: [["9.5", "1"], ["10.25", "1"], ["100", "1"]], asks: [] });
    expect(levels(b).bids.map(([p]) => p)).toEqual(["100", "10.25", "9.5"]);
  });
});

describe("grouping", () => {
  it("merges bids down and asks up to the step, with exact cumulative sizes", () => {
    const b = snap();
    const bids = grouped(b.bids, "bids", "1", 10).map((l) => [toPlain(l.price), toPlain(l.quantity), toPlain(l.cumulative)]);
    expect(bids).toEqual([
      ["100", "1.5", "1.5"],
      ["99", "5", "6.5"],
    ]);
    const asks = grouped(b.asks, "asks", "1", 10).map((l) => [toPlain(l.price), toPlain(l.quantity), toPlain(l.cumulative)]);
    expect(asks).toEqual([
      ["101", "5", "5"],
    ]);
  });

  it("stops at the depth asked for", () => {
    const b = snap();
    expect(grouped(b.bids, "bids", "0.01", 2)).toHaveLength(2);
  });

  it("adds quantities exactly where floats would not (0.1 + 0.2)", () => {
    const b = fromSnapshot({ seq: 1, bids: [["5.01", "0.1"], ["5.02", "0.2"]], asks: [] });
    const [top] = grouped(b.bids, "bids", "0.1", 5);
    expect(toPlain(top.quantity)).toBe("0.3");
  });
});
