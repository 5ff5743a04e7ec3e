import Trace

/// Two bitmap buffers (expected and actual) and the container's mappings
/// over them, counted into a fixed number of bins over a window of pages,
/// so that an 8 TiB range (2^31 bits) draws as a few hundred cells and a
/// 300-page range draws page by page.
///
/// Bit `n` of a buffer stands for the page at `base + n * pgsize`, as the
/// kernel's `vfio_iova_dirty_bitmap()` lays it out (rule `bitmap.layout`).
public struct BitmapPicture: Sendable, Equatable {
    /// What a row of cells counts, per bin.
    public enum Row: String, Sendable, CaseIterable {
        /// Pages inside the container's mappings (the rest are holes).
        case mapped
        /// Pages the expected buffer marks dirty.
        case expected
        /// Pages the actual buffer marks dirty.
        case actual
        /// Inside mappings: expected dirty, got clean.
        case missing
        /// Inside mappings: expected clean, got dirty.
        case extra
        /// Outside every mapping: the two buffers differ.
        case outside
    }

    /// The IOVA of bit 0 and the bytes a bit stands for.
    public let base: UInt64
    public let pgsize: UInt64
    /// The bits drawn.
    public let window: Range<UInt64>
    /// Pages per bin (the last bin may hold fewer).
    public let binWidth: UInt64
    /// Per row, a count per bin.
    public private(set) var counts: [Row: [UInt64]]

    public var binCount: Int { Int((UInt64(window.count) + binWidth - 1) / binWidth) }

    /// The bits bin `i` covers.
    public func pages(ofBin i: Int) -> Range<UInt64> {
        let lo = window.lowerBound + UInt64(i) * binWidth
        return lo..<min(window.upperBound, lo + binWidth)
    }

    /// The IOVA range (inclusive) the bits `pages` stand for.
    public func iovas(_ pages: Range<UInt64>) -> ClosedRange<UInt64> {
        let lo = base &+ pages.lowerBound &* pgsize
        return lo...(base &+ pages.upperBound &* pgsize &- 1)
    }

    public func count(_ row: Row, bin i: Int) -> UInt64 { counts[row]![i] }

    /// Counts `window` of the buffers in at most `bins` bins. Bytes past a
    /// buffer's end count as clean; `coverage` holds sorted bit ranges
    /// inside mappings. One pass over the buffers' segments: uniform runs
    /// are counted without visiting their bytes.
    public init(expected: BitmapBytes, actual: BitmapBytes, coverage: [Range<UInt64>], base: UInt64, pgsize: UInt64,
                window: Range<UInt64>, bins: Int) {
        self.base = base
        self.pgsize = pgsize
        self.window = window
        let length = UInt64(window.count)
        let bins = UInt64(max(1, bins))
        let width = max(1, (length + bins - 1) / bins)
        binWidth = width
        let binCount = Int((length + width - 1) / width)
        var counters = Row.allCases.map { _ in BinCounter(window: window, width: width, bins: binCount) }
        let byteEnd = max(expected.count, actual.count)
        let covered = BitmapBytes(byteCount: byteEnd, setBits: coverage)
        var offset = window.lowerBound / 8
        let end = min(byteEnd, (window.upperBound + 7) / 8)
        var e = ZeroPaddedCursor(expected, from: offset), a = ZeroPaddedCursor(actual, from: offset)
        var c = ZeroPaddedCursor(covered, from: offset)
        while offset < end {
            let span = min(e.remaining, a.remaining, c.remaining, end - offset)
            if let eb = e.fill, let ab = a.fill, let cb = c.fill {
                for r in 0..<counters.count { counters[r].addFill(Self.rowByte(r, eb, ab, cb), bytes: offset..<offset + span) }
            } else {
                for k in 0..<span {
                    let eb = e.byte(k), ab = a.byte(k), cb = c.byte(k)
                    guard eb | ab | cb != 0 else { continue }
                    for r in 0..<counters.count { counters[r].addByte(Self.rowByte(r, eb, ab, cb), at: offset + k) }
                }
            }
            e.advance(span)
            a.advance(span)
            c.advance(span)
            offset += span
        }
        var counts: [Row: [UInt64]] = [:]
        for (k, row) in Row.allCases.enumerated() { counts[row] = counters[k].counts }
        self.counts = counts
    }

    /// The byte row `r` (in ``Row`` order) counts at one byte position,
    /// from the expected, actual and coverage bytes there (no allocation:
    /// a literal bitmap runs this per byte).
    static func rowByte(_ r: Int, _ e: UInt8, _ a: UInt8, _ c: UInt8) -> UInt8 {
        switch r {
        case 0: c
        case 1: e
        case 2: a
        case 3: e & ~a & c
        case 4: a & ~e & c
        default: (e ^ a) & ~c
        }
    }

    /// Pictures from the whole buffer down to page resolution around
    /// `focus` (a bit number), each window `factor` times narrower than the
    /// one before: the drill-down a report shows for one divergence.
    public static func zoom(expected: BitmapBytes, actual: BitmapBytes, coverage: [Range<UInt64>], base: UInt64,
                            pgsize: UInt64, focus: UInt64, bins: Int = 256, factor: UInt64 = 32) -> [BitmapPicture] {
        let total = max(expected.count, actual.count) &* 8
        guard total > 0, bins > 0 else { return [] }
        var window: Range<UInt64> = 0..<total
        var out: [BitmapPicture] = []
        while true {
            out.append(BitmapPicture(expected: expected, actual: actual, coverage: coverage, base: base, pgsize: pgsize,
                                     window: window, bins: bins))
            let length = UInt64(window.count)
            if length <= UInt64(bins) { break }
            let next = max(UInt64(bins), length / max(2, factor))
            let centre = min(max(focus, window.lowerBound), window.upperBound - 1)
            let lo = min(max(window.lowerBound, centre >= next / 2 ? centre - next / 2 : 0), window.upperBound - next)
            window = lo..<lo + next
        }
        return out
    }
}

/// Set-bit counts per bin over a window of bits, fed byte runs in order.
struct BinCounter {
    let window: Range<UInt64>
    let width: UInt64
    var counts: [UInt64]

    init(window: Range<UInt64>, width: UInt64, bins: Int) {
        self.window = window
        self.width = width
        counts = Array(repeating: 0, count: bins)
    }

    /// Bits `from..<to` of a byte, `0 <= from <= to <= 8`.
    static func mask(_ from: UInt64, _ to: UInt64) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt16(1) << to) - (UInt16(1) << from))
    }

    /// The set bits among bits `r` of a run of bytes all equal to `byte`
    /// (bit numbers counted from the run's first byte boundary).
    static func setBits(ofFill byte: UInt8, in r: Range<UInt64>) -> UInt64 {
        if byte == 0xFF { return UInt64(r.count) }
        var lo = r.lowerBound, n: UInt64 = 0
        let hi = r.upperBound
        if lo % 8 != 0 {
            let byteStart = lo / 8 * 8
            let stop = min(hi, byteStart + 8)
            n += UInt64((byte & mask(lo - byteStart, stop - byteStart)).nonzeroBitCount)
            lo = stop
        }
        guard lo < hi else { return n }
        let whole = (hi - lo) / 8
        n += whole * UInt64(byte.nonzeroBitCount)
        lo += whole * 8
        if lo < hi { n += UInt64((byte & mask(0, hi - lo)).nonzeroBitCount) }
        return n
    }

    mutating func addFill(_ byte: UInt8, bytes: Range<UInt64>) {
        guard byte != 0 else { return }
        let lo = max(bytes.lowerBound * 8, window.lowerBound), hi = min(bytes.upperBound * 8, window.upperBound)
        guard lo < hi else { return }
        var bin = Int((lo - window.lowerBound) / width)
        var at = lo
        while at < hi {
            let binEnd = min(hi, window.lowerBound + UInt64(bin + 1) * width)
            counts[bin] += BinCounter.setBits(ofFill: byte, in: at..<binEnd)
            at = binEnd
            bin += 1
        }
    }

    mutating func addByte(_ byte: UInt8, at offset: UInt64) {
        guard byte != 0 else { return }
        let first = offset * 8
        if first >= window.lowerBound && first + 8 <= window.upperBound {
            let b0 = (first - window.lowerBound) / width, b7 = (first + 7 - window.lowerBound) / width
            if b0 == b7 {
                counts[Int(b0)] += UInt64(byte.nonzeroBitCount)
                return
            }
        }
        var v = byte
        while v != 0 {
            let bit = first + UInt64(v.trailingZeroBitCount)
            v &= v - 1
            if window.contains(bit) { counts[Int((bit - window.lowerBound) / width)] += 1 }
        }
    }
}

/// Walks a buffer's segments from a byte offset; past its end it reads as
/// an endless run of zero bytes.
struct ZeroPaddedCursor {
    let segments: [BitmapBytes.Segment]
    var index = 0
    var into: UInt64 = 0

    init(_ b: BitmapBytes, from offset: UInt64) {
        segments = b.segments
        advance(offset)
    }

    var remaining: UInt64 { index < segments.count ? segments[index].byteCount - into : .max }

    /// The byte of a uniform stretch, nil inside literal bytes.
    var fill: UInt8? {
        guard index < segments.count else { return 0 }
        if case .fill(let b, _) = segments[index] { return b }
        return nil
    }

    func byte(_ k: UInt64) -> UInt8 {
        guard index < segments.count else { return 0 }
        switch segments[index] {
        case .fill(let b, _): return b
        case .literal(let l): return l[Int(into + k)]
        }
    }

    mutating func advance(_ n: UInt64) {
        into += n
        while index < segments.count && into >= segments[index].byteCount {
            into -= segments[index].byteCount
            index += 1
        }
    }
}
