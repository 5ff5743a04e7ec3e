import TestSupport
import Testing
import Trace
@testable import Replay

@Suite("Bitmap differences stay bounded")
struct BitmapDifferenceTests {
    /// What the comparison computed before it streamed: every set-bit run
    /// of each side, subtracted both ways.
    func reference(_ e: BitmapBytes, _ a: BitmapBytes) -> [PageRun] {
        let n = min(e.count, a.count) * 8
        let er = Self.clip(e.setBitRuns(), to: n), ar = Self.clip(a.setBitRuns(), to: n)
        var runs = Self.subtract(er, ar).map { PageRun(pages: $0, expectedDirty: true) }
        runs += Self.subtract(ar, er).map { PageRun(pages: $0, expectedDirty: false) }
        return runs.sorted { $0.pages.lowerBound < $1.pages.lowerBound }
    }

    static func clip(_ runs: [Range<UInt64>], to limit: UInt64) -> [Range<UInt64>] {
        runs.compactMap { r in r.lowerBound < limit ? r.lowerBound..<min(r.upperBound, limit) : nil }
    }

    /// `a` minus `b`, both sorted and non-overlapping.
    static func subtract(_ a: [Range<UInt64>], _ b: [Range<UInt64>]) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        var j = 0
        for r in a {
            var lo = r.lowerBound
            while j < b.count && b[j].upperBound <= lo { j += 1 }
            var k = j
            while k < b.count && b[k].lowerBound < r.upperBound {
                if b[k].lowerBound > lo { out.append(lo..<b[k].lowerBound) }
                lo = max(lo, b[k].upperBound)
                k += 1
            }
            if lo < r.upperBound { out.append(lo..<r.upperBound) }
        }
        return out
    }

    func random(_ g: inout SplitMix, bytes: Int) -> BitmapBytes {
        var b = BitmapBytes.Builder()
        while b.count < UInt64(bytes) {
            let n = UInt64(1 + g.next() % 40)
            switch g.next() % 4 {
            case 0: b.append(0, count: n)
            case 1: b.append(0xFF, count: n)
            case 2: b.append(UInt8(truncatingIfNeeded: g.next()), count: n)
            default: b.append(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) })
            }
        }
        return b.build()
    }

    @Test("the streaming difference finds the same runs as subtracting every run list, on random bitmaps", arguments: 0..<40)
    func sameAsReference(seed: Int) {
        var g = SplitMix(seed: UInt64(seed))
        let e = random(&g, bytes: 300), a = random(&g, bytes: 260 + Int(g.next() % 80))
        let (runs, unlisted) = OutcomeComparison.differingRuns(e, a)
        #expect(runs == reference(e, a))
        #expect(unlisted == 0)
    }

    @Test("256 MiB of alternating bits against their opposite: 4096 runs listed, the other 2^31 - 4096 pages counted, no 2^30-run list")
    func alternatingBitmaps() {
        let size: UInt64 = 256 << 20
        let e = BitmapBytes(repeating: 0x55, count: size), a = BitmapBytes(repeating: 0xAA, count: size)
        let (runs, unlisted) = OutcomeComparison.differingRuns(e, a)
        #expect(runs.count == OutcomeComparison.maxRuns)
        #expect(UInt64(runs.count) + unlisted == size * 8, "every bit differs")
        let d = OutcomeComparison.bitmapDifference(expected: e, actual: a, base: 0, pgsize: 4096, coverage: [0..<(size * 8)])
        #expect(d.lines().last?.contains("more differing pages") == true, "\(d.lines())")
    }

    @Test("the text form of a bitmap with too many runs is its bytes, not a run list")
    func compactText() throws {
        var b = BitmapBytes.Builder()
        b.append(0x55, count: 64 << 20)
        b.append(0xAA, count: 64 << 20)
        let bitmap = b.build()
        #expect(bitmap.setBitRuns(limit: 4096) == nil)
        let text = TextSyntax.bitmap(bitmap, defaultCount: bitmap.count)
        #expect(text.count < 100, "\(text.prefix(200))")
        #expect(text.contains("*"), "\(text)")
    }
}
