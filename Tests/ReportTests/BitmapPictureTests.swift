import TestSupport
import Testing
import Trace
@testable import Report

@Suite("Bitmap pictures count every page once")
struct BitmapPictureTests {
    /// Bytes with long uniform stretches and literal noise, so that both
    /// the segment fast path and the byte path run.
    static func buffer(_ n: Int, _ rng: inout SplitMix) -> BitmapBytes {
        var bytes: [UInt8] = []
        while bytes.count < n {
            switch rng.below(4) {
            case 0: bytes += Array(repeating: 0, count: Int(rng.below(40)))
            case 1: bytes += Array(repeating: 0xFF, count: Int(rng.below(40)))
            case 2: bytes += Array(repeating: UInt8(truncatingIfNeeded: rng.next()), count: Int(rng.below(40)))
            default: bytes += (0..<rng.below(12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
        }
        return BitmapBytes(bytes.prefix(n))
    }

    static func bit(_ b: [UInt8], _ i: UInt64) -> Bool {
        i / 8 < b.count && (b[Int(i / 8)] >> UInt8(i % 8)) & 1 == 1
    }

    @Test("each row's counts equal a page-by-page count, for random buffers, windows and bin counts")
    func countsMatchReference() {
        var rng = SplitMix(seed: 0x5eed_b17)
        for _ in 0..<300 {
            let ne = Int(rng.below(200)) + 1
            let na = rng.below(5) == 0 ? Int(rng.below(200)) + 1 : ne
            let e = Self.buffer(ne, &rng), a = Self.buffer(na, &rng)
            let bits = UInt64(max(ne, na)) * 8
            var coverage: [Range<UInt64>] = []
            var at = rng.below(64)
            while at < bits {
                let len = rng.below(300) + 1
                coverage.append(at..<min(bits, at + len))
                at += len + rng.below(200) + 1
            }
            let lo = rng.below(bits), hi = lo + 1 + rng.below(bits - lo)
            let bins = Int(rng.below(70)) + 1
            let p = BitmapPicture(expected: e, actual: a, coverage: coverage, base: 0x10000, pgsize: 4096,
                                  window: lo..<hi, bins: bins)
            let eb = e.materialize(), ab = a.materialize()
            #expect(p.binCount <= bins)
            #expect(p.pages(ofBin: p.binCount - 1).upperBound == hi)
            for i in 0..<p.binCount {
                var want: [BitmapPicture.Row: UInt64] = [:]
                for page in p.pages(ofBin: i) {
                    let x = Self.bit(eb, page), y = Self.bit(ab, page)
                    let inside = coverage.contains { $0.contains(page) }
                    let flags: [(BitmapPicture.Row, Bool)] = [
                        (.mapped, inside), (.expected, x), (.actual, y), (.missing, inside && x && !y),
                        (.extra, inside && y && !x), (.outside, !inside && x != y),
                    ]
                    for (row, on) in flags where on { want[row, default: 0] += 1 }
                }
                for row in BitmapPicture.Row.allCases {
                    #expect(p.count(row, bin: i) == want[row, default: 0], "row \(row) bin \(i) of \(lo)..<\(hi)")
                }
            }
        }
    }

    @Test("an 8 TiB all-dirty range against an all-clean answer draws in a few levels without expanding it")
    func hugeUniformRange() {
        let bytes: UInt64 = 1 << 28  // 2^31 pages of 4 KiB: 8 TiB
        let e = BitmapBytes(repeating: 0xFF, count: bytes), a = BitmapBytes(repeating: 0, count: bytes)
        let focus: UInt64 = 1 << 30
        let levels = BitmapPicture.zoom(expected: e, actual: a, coverage: [0..<(bytes * 8)], base: 0, pgsize: 4096,
                                        focus: focus)
        #expect(levels.count >= 4 && levels.count <= 8)
        #expect(levels.first?.window == 0..<(bytes * 8))
        // The last level is page by page, around the focus.
        let last = levels.last!
        #expect(last.binWidth == 1 && last.window.contains(focus))
        for (i, p) in levels.enumerated() {
            if i > 0 { #expect(levels[i - 1].window.contains(p.window.lowerBound)) }
            for b in 0..<p.binCount {
                let n = UInt64(p.pages(ofBin: b).count)
                #expect(p.count(.missing, bin: b) == n && p.count(.extra, bin: b) == 0 && p.count(.actual, bin: b) == 0)
            }
        }
    }

    @Test("the fill counter handles every bit alignment")
    func fillAlignment() {
        for byte in [UInt8(0x01), 0x80, 0x5A, 0xFF, 0x0F] {
            for lo in UInt64(0)..<20 {
                for hi in lo...(lo + 30) {
                    let want = (lo..<hi).filter { (byte >> UInt8($0 % 8)) & 1 == 1 }.count
                    #expect(BinCounter.setBits(ofFill: byte, in: lo..<hi) == UInt64(want))
                }
            }
        }
    }
}
