/// The contents of a user bitmap buffer: the bytes the kernel wrote (or the
/// caller left there before the call), stored as runs so that an 8 TiB
/// mapping's 256 MiB all-dirty bitmap costs a few bytes, not 256 MiB.
///
/// The representation is canonical: any run of at least `minimumFill` equal
/// bytes is a ``Segment/fill(_:count:)``, everything else is a literal, and
/// neighbours are merged. Two values are equal exactly when their bytes are.
///
/// Bit `n` is bit `n % 8` of byte `n / 8`, which on a little-endian host is
/// the kernel's layout of `u64` words (`docs/kernel-rules.md#bitmap-layout`,
/// rule `bitmap.layout`).
public struct BitmapBytes: Equatable, Hashable, Sendable {
    public enum Segment: Equatable, Hashable, Sendable {
        case fill(UInt8, count: UInt64)
        case literal([UInt8])

        public var byteCount: UInt64 {
            switch self {
            case .fill(_, let n): n
            case .literal(let b): UInt64(b.count)
            }
        }
    }

    /// Shortest run stored as a fill.
    public static let minimumFill: UInt64 = 16

    public private(set) var segments: [Segment]
    public private(set) var count: UInt64

    public init() {
        segments = []
        count = 0
    }

    /// `count` bytes all equal to `byte`.
    public init(repeating byte: UInt8, count: UInt64) {
        var b = Builder()
        b.append(byte, count: count)
        self = b.build()
    }

    public init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        var b = Builder()
        b.append(contentsOf: bytes)
        self = b.build()
    }

    /// Little-endian `u64` words, as the kernel copies them.
    public init(words: [UInt64]) {
        var b = Builder()
        b.append(words: words)
        self = b.build()
    }

    /// A buffer of `byteCount` bytes whose set bits are exactly `runs`
    /// (sorted, non-overlapping, half-open bit ranges). Bits past
    /// `byteCount * 8` are ignored.
    public init(byteCount: UInt64, setBits runs: [Range<UInt64>]) {
        var w = BitRunWriter()
        let limit = byteCount &* 8
        for r in runs.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            let lo = r.lowerBound, hi = min(r.upperBound, limit)
            if lo < hi { w.set(lo..<hi) }
        }
        self = w.finish(byteCount: byteCount)
    }

    /// True when every byte is zero (or the buffer is empty).
    public var isAllZero: Bool {
        segments.allSatisfy { if case .fill(0, _) = $0 { return true }; return false }
    }

    /// When every byte has the same value, that value.
    public var uniformByte: UInt8? {
        guard segments.count == 1 else { return nil }
        switch segments[0] {
        case .fill(let b, _): return b
        case .literal(let l): return l.allSatisfy { $0 == l[0] } ? l[0] : nil
        }
    }

    /// Expands to plain bytes. Only for buffers the caller knows are small
    /// enough to hold in memory.
    public func materialize() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Int(count))
        for s in segments {
            switch s {
            case .fill(let b, let n): out.append(contentsOf: repeatElement(b, count: Int(n)))
            case .literal(let l): out.append(contentsOf: l)
            }
        }
        return out
    }

    /// The byte at `offset` (0 past the end).
    public func byte(at offset: UInt64) -> UInt8 {
        var base: UInt64 = 0
        for s in segments {
            let n = s.byteCount
            if offset < base + n {
                switch s {
                case .fill(let b, _): return b
                case .literal(let l): return l[Int(offset - base)]
                }
            }
            base += n
        }
        return 0
    }

    /// Calls `body(offset, segment)` for each piece of the bytes in `range`
    /// (clipped to the buffer), in order; `offset` is where the piece starts.
    public func forEachPiece(in range: Range<UInt64>, _ body: (UInt64, Segment) -> Void) {
        var base: UInt64 = 0
        for s in segments {
            let n = s.byteCount
            defer { base += n }
            let lo = max(base, range.lowerBound), hi = min(base + n, range.upperBound)
            if lo >= hi { continue }
            switch s {
            case .fill(let b, _): body(lo, .fill(b, count: hi - lo))
            case .literal(let l): body(lo, .literal(Array(l[Int(lo - base)..<Int(hi - base)])))
            }
            if base + n >= range.upperBound { return }
        }
    }

    /// The bytes in `range` (clipped to the buffer) as their own value.
    public func slice(_ range: Range<UInt64>) -> BitmapBytes {
        var b = Builder()
        forEachPiece(in: range) { _, piece in
            switch piece {
            case .fill(let v, let n): b.append(v, count: n)
            case .literal(let l): b.append(contentsOf: l)
            }
        }
        return b.build()
    }

    /// The set bits as sorted, maximal half-open ranges of bit numbers.
    public func setBitRuns() -> [Range<UInt64>] { setBitRuns(limit: .max)! }

    /// The set-bit runs, or nil as soon as there are more than `limit`:
    /// a 256 MiB bitmap of alternating bits has 2^30 runs, which nobody
    /// should materialise to print (the text form then uses bytes).
    public func setBitRuns(limit: Int) -> [Range<UInt64>]? {
        var runs: [Range<UInt64>] = []
        var over = false
        func add(_ lo: UInt64, _ hi: UInt64) {
            if let last = runs.last, last.upperBound == lo {
                runs[runs.count - 1] = last.lowerBound..<hi
            } else if runs.count < limit {
                runs.append(lo..<hi)
            } else {
                over = true
            }
        }
        func addByte(_ byte: UInt8, at offset: UInt64) {
            guard byte != 0 else { return }
            var v = byte
            var i: UInt64 = 0
            while v != 0 {
                let tz = UInt64(v.trailingZeroBitCount)
                i += tz
                v >>= UInt8(tz)
                let ones = UInt64((~v).trailingZeroBitCount)
                add(offset * 8 + i, offset * 8 + i + ones)
                i += ones
                v = ones >= 8 ? 0 : v >> UInt8(ones)
            }
        }
        var base: UInt64 = 0
        for s in segments {
            switch s {
            case .fill(0, let n): base += n
            case .fill(0xFF, let n): add(base * 8, (base + n) * 8); base += n
            case .fill(let b, let n):
                var k: UInt64 = 0
                while k < n && !over {
                    addByte(b, at: base + k)
                    k += 1
                }
                base += n
            case .literal(let l):
                for (k, b) in l.enumerated() where !over { addByte(b, at: base + UInt64(k)) }
                base += UInt64(l.count)
            }
            if over { return nil }
        }
        return runs
    }

    /// Number of set bits.
    public var popcount: UInt64 {
        segments.reduce(0) { acc, s in
            switch s {
            case .fill(let b, let n): acc + UInt64(b.nonzeroBitCount) * n
            case .literal(let l): acc + l.reduce(0) { $0 + UInt64($1.nonzeroBitCount) }
            }
        }
    }

    /// Incremental construction that keeps the canonical form.
    public struct Builder: Sendable {
        private var segments: [Segment] = []
        private var literal: [UInt8] = []
        private var runByte: UInt8 = 0
        private var runCount: UInt64 = 0
        public private(set) var count: UInt64 = 0

        public init() {}

        /// Room for `n` more literal bytes, so that a large buffer is
        /// copied once instead of through repeated growth.
        public mutating func reserveLiteral(_ n: Int) {
            literal.reserveCapacity(literal.count + n)
        }

        public mutating func append(_ byte: UInt8, count n: UInt64) {
            guard n > 0 else { return }
            count += n
            if runCount > 0 && runByte == byte {
                runCount += n
                return
            }
            flushRun()
            runByte = byte
            runCount = n
        }

        public mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
            var i = bytes.startIndex
            while i != bytes.endIndex {
                let b = bytes[i]
                var j = bytes.index(after: i)
                var n: UInt64 = 1
                while j != bytes.endIndex && bytes[j] == b { n += 1; j = bytes.index(after: j) }
                append(b, count: n)
                i = j
            }
        }

        /// Appends little-endian words, taking whole-word runs of 0 and ~0 fast.
        public mutating func append(words: [UInt64]) {
            words.withUnsafeBufferPointer { append(words: $0) }
        }

        /// Appends little-endian words. Words of one repeated byte extend
        /// runs; a stretch of other words goes to the literal in one copy,
        /// less the first word's leading run and the last word's trailing
        /// run, which may join runs outside the stretch. Inside it no run
        /// reaches 16 bytes (at most 7 + 7 across a word edge), so the
        /// result is canonical.
        public mutating func append(words: UnsafeBufferPointer<UInt64>) {
            let spread: UInt64 = 0x0101_0101_0101_0101
            func uniform(_ w: UInt64) -> Bool { w == (w & 0xFF) &* spread }
            var i = 0
            let n = words.count
            while i < n {
                let w = UInt64(littleEndian: words[i])
                if uniform(w) {
                    var j = i + 1
                    while j < n && words[j] == words[i] { j += 1 }
                    append(UInt8(truncatingIfNeeded: w), count: UInt64(j - i) * 8)
                    i = j
                    continue
                }
                var j = i + 1
                while j < n && !uniform(UInt64(littleEndian: words[j])) { j += 1 }
                let b0 = UInt8(truncatingIfNeeded: w)
                let lead = (w ^ (UInt64(b0) &* spread)).trailingZeroBitCount / 8
                let lastWord = UInt64(littleEndian: words[j - 1])
                let b7 = UInt8(truncatingIfNeeded: lastWord >> 56)
                let trail = (lastWord ^ (UInt64(b7) &* spread)).leadingZeroBitCount / 8
                append(b0, count: UInt64(lead))
                flushRun()
                let from = i * 8 + lead, to = j * 8 - trail
                UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(words)[from..<to]).withMemoryRebound(to: UInt8.self) {
                    literal.append(contentsOf: $0)
                }
                count += UInt64(to - from)
                append(b7, count: UInt64(trail))
                i = j
            }
        }

        public mutating func append(_ other: BitmapBytes) {
            for s in other.segments {
                switch s {
                case .fill(let b, let n): append(b, count: n)
                case .literal(let l): append(contentsOf: l)
                }
            }
        }

        private mutating func flushRun() {
            guard runCount > 0 else { return }
            if runCount >= BitmapBytes.minimumFill {
                flushLiteral()
                if case .fill(let b, let n)? = segments.last, b == runByte {
                    segments[segments.count - 1] = .fill(b, count: n + runCount)
                } else {
                    segments.append(.fill(runByte, count: runCount))
                }
            } else {
                for _ in 0..<runCount { literal.append(runByte) }
            }
            runCount = 0
        }

        private mutating func flushLiteral() {
            guard !literal.isEmpty else { return }
            segments.append(.literal(literal))
            literal = []
        }

        public mutating func build() -> BitmapBytes {
            flushRun()
            flushLiteral()
            var r = BitmapBytes()
            r.segments = segments
            r.count = count
            return r
        }
    }
}

/// Turns ascending runs of set bits into canonical bytes without expanding
/// whole-byte runs.
private struct BitRunWriter {
    var builder = BitmapBytes.Builder()
    var emitted: UInt64 = 0        // bytes already handed to the builder
    var pendingIndex: UInt64? = nil
    var pending: UInt8 = 0

    static func mask(_ from: UInt64, _ to: UInt64) -> UInt8 {
        // bits [from, to) of one byte, 0 <= from < to <= 8
        UInt8(truncatingIfNeeded: ((1 << (to - from)) - 1) << from)
    }

    mutating func flush() {
        guard let p = pendingIndex else { return }
        if p > emitted { builder.append(0, count: p - emitted) }
        builder.append(pending, count: 1)
        emitted = p + 1
        pendingIndex = nil
        pending = 0
    }

    mutating func setBits(inByte index: UInt64, _ m: UInt8) {
        if pendingIndex == index {
            pending |= m
        } else {
            flush()
            if index < emitted { return } // overlapping input: already written
            pendingIndex = index
            pending = m
        }
    }

    mutating func set(_ r: Range<UInt64>) {
        let lo = r.lowerBound, hi = r.upperBound
        if lo / 8 == (hi - 1) / 8 {
            setBits(inByte: lo / 8, Self.mask(lo % 8, (hi - 1) % 8 + 1))
            return
        }
        var firstFull = lo / 8
        if lo % 8 != 0 {
            setBits(inByte: lo / 8, Self.mask(lo % 8, 8))
            firstFull += 1
        }
        let fullEnd = hi / 8
        if fullEnd > firstFull {
            flush()
            let start = max(firstFull, emitted)
            if start > emitted { builder.append(0, count: start - emitted) }
            if fullEnd > start { builder.append(0xFF, count: fullEnd - start) }
            emitted = max(emitted, fullEnd)
        }
        if hi % 8 != 0 { setBits(inByte: hi / 8, Self.mask(0, hi % 8)) }
    }

    mutating func finish(byteCount: UInt64) -> BitmapBytes {
        flush()
        if byteCount > emitted { builder.append(0, count: byteCount - emitted) }
        return builder.build()
    }
}
