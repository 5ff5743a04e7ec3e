import TestSupport
import Testing
import Trace

@Suite("BitmapBytes")
struct BitmapBytesTests {
    /// The obvious byte-by-byte construction, to check the run-based one.
    static func naive(byteCount: Int, runs: [Range<UInt64>]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: byteCount)
        for r in runs { for bit in r where bit < UInt64(byteCount * 8) { b[Int(bit / 8)] |= 1 << UInt8(bit % 8) } }
        return b
    }

    @Test("bit runs build the same bytes as setting bits one by one", arguments: 0..<50 as Range<UInt64>)
    func runsMatchNaive(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        var runs: [Range<UInt64>] = []
        var at = rng.next() % 20
        for _ in 0..<(rng.next() % 12) {
            let len = rng.next() % 150 + 1
            runs.append(at..<(at + len))
            at += len + rng.next() % 90 + (rng.next() % 4 == 0 ? 0 : 1)
        }
        let count = Int((at + 7) / 8 + rng.next() % 40)
        let b = BitmapBytes(byteCount: UInt64(count), setBits: runs)
        let expected = Self.naive(byteCount: count, runs: runs)
        #expect(b.materialize() == expected)
        #expect(b == BitmapBytes(expected))
        #expect(b.count == UInt64(count))
        // And back: the runs it reports rebuild the same bytes.
        #expect(BitmapBytes(byteCount: UInt64(count), setBits: b.setBitRuns()) == b)
        #expect(b.popcount == UInt64(expected.reduce(0) { $0 + $1.nonzeroBitCount }))
    }

    @Test("equal bytes give equal values however they were built")
    func canonical() {
        let bytes: [UInt8] = [1, 2] + [UInt8](repeating: 0xFF, count: 40) + [0, 0, 0] + [UInt8](repeating: 0, count: 30) + [7]
        var b = BitmapBytes.Builder()
        b.append(contentsOf: bytes[0..<10])
        b.append(0xFF, count: 32)
        b.append(contentsOf: bytes[42...])
        #expect(b.build() == BitmapBytes(bytes))
        #expect(BitmapBytes(bytes).segments.count == 4) // literal, 0xFF fill, 0 fill, literal
    }

    @Test("an 8 TiB all-dirty bitmap stays small")
    func hugeFill() {
        let b = BitmapBytes(byteCount: 1 << 28, setBits: [0..<(1 << 31)])
        #expect(b.segments == [.fill(0xFF, count: 1 << 28)])
        #expect(b.setBitRuns() == [0..<(1 << 31)])
        #expect(b.popcount == 1 << 31)
    }

    @Test("words are little-endian u64s, bit n of the result is page n")
    func words() {
        let b = BitmapBytes(words: [0x1, 0x8000_0000_0000_0000, 0, ~0])
        #expect(b.setBitRuns() == [0..<1, 127..<128, 192..<256])
        #expect(b.count == 32)
    }
}

@Suite("BitmapBytes word appends")
struct BitmapBytesWordTests {
    @Test("appending words gives the same canonical value as appending their bytes", arguments: 0..<20 as Range<UInt64>)
    func wordsMatchBytes(seed: UInt64) {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
        var words: [UInt64] = []
        for _ in 0..<300 {
            // Runs that cross word edges, uniform words, and random ones.
            switch next() % 5 {
            case 0: words.append(0)
            case 1: words.append(~0)
            case 2: words.append((next() % 4) &* 0x0101_0101_0101_0101)
            case 3: words.append(next() & 0xFFFF_0000_0000_FFFF)
            default: words.append(next())
            }
        }
        let bytes = words.flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * UInt64($0))) } }
        #expect(BitmapBytes(words: words) == BitmapBytes(bytes))
        #expect(BitmapBytes(words: words).materialize() == bytes)
    }
}
