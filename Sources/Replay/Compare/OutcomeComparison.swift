import Trace

/// How outcomes are compared.
public struct ComparisonOptions: Sendable {
    /// Count bitmap bits outside every mapping (holes between mappings and
    /// bits past the range's end) as divergences. The kernel writes some of
    /// them (the scratch residue of rule `bitmap.scratch-residue`, the whole
    /// words of rule `bitmap.clubbing`; `docs/kernel-rules.md#update-user-bitmap`); the engine
    /// models that, so strict is the default, and lenient is for comparing
    /// against implementations that zero them.
    public var strictOutsideMappings = true

    public init(strictOutsideMappings: Bool = true) {
        self.strictOutsideMappings = strictOutsideMappings
    }
}

/// One way an event's outcome differs from what was expected.
public enum Difference: Sendable, Equatable, CustomStringConvertible {
    /// A scalar outcome field: the result, `unmap.size`, status flags, a
    /// GET_INFO field.
    case field(name: String, expected: String, actual: String)
    /// The bitmap buffer after the call.
    case bitmap(BitmapDifference)
    /// The two events are not the same call (diff of two traces whose
    /// workloads drifted apart).
    case inputs(expected: String, actual: String)
    /// The backend says the modelled kernel would crash here.
    case hazard(String)

    public var description: String {
        switch self {
        case .field(let n, let e, let a): "\(n): expected \(e), got \(a)"
        case .bitmap(let b): b.description
        case .inputs(let e, let a): "different calls: expected `\(e)`, got `\(a)`"
        case .hazard(let s): "kernel hazard: \(s)"
        }
    }

    /// Whether this difference makes the event divergent under `options`
    /// (a bitmap difference only outside mappings counts only when strict).
    public func counts(_ options: ComparisonOptions) -> Bool {
        if case .bitmap(let b) = self, b.inMappings.isEmpty, b.lengths == nil {
            return options.strictOutsideMappings
        }
        return true
    }
}

/// A run of pages whose dirty bit differs.
public struct PageRun: Sendable, Equatable {
    /// Page numbers from the range's start (bit numbers of the buffer).
    public var pages: Range<UInt64>
    /// What the expectation said; the actual value is the opposite.
    public var expectedDirty: Bool
}

/// How two bitmap buffers differ, split by whether the bits lie inside a
/// mapping, with what is needed to name IOVAs.
public struct BitmapDifference: Sendable, Equatable, CustomStringConvertible {
    /// The IOVA bit 0 stands for, and the page size of a bit.
    public var base: UInt64
    public var pgsize: UInt64
    public var inMappings: [PageRun]
    /// Bits in holes between mappings or past the range's end.
    public var outsideMappings: [PageRun]
    /// Buffer lengths (expected, actual) when they differ.
    public var lengths: (UInt64, UInt64)?
    /// Differing pages past the first ``OutcomeComparison/maxRuns`` runs,
    /// counted but not listed (a 256 MiB bitmap can differ in 2^30 runs).
    public var unlistedPages: UInt64 = 0

    public static func == (a: Self, b: Self) -> Bool {
        a.base == b.base && a.pgsize == b.pgsize && a.inMappings == b.inMappings
            && a.outsideMappings == b.outsideMappings && a.lengths?.0 == b.lengths?.0 && a.lengths?.1 == b.lengths?.1
            && a.unlistedPages == b.unlistedPages
    }

    /// Up to `limit` lines such as `pages 512..767 (iova 0x300000..0x3fffff) expected clean, got dirty`.
    public func lines(limit: Int = 8) -> [String] {
        var out: [String] = []
        if let (e, a) = lengths { out.append("bitmap length: expected \(e) bytes, got \(a)") }
        func render(_ r: PageRun, _ where_: String) -> String {
            let lo = r.pages.lowerBound, hi = r.pages.upperBound - 1
            let pages = lo == hi ? "page \(lo)" : "pages \(lo)..\(hi)"
            let iovaLo = base &+ lo &* pgsize, iovaHi = base &+ (hi + 1) &* pgsize &- 1
            let what = r.expectedDirty ? "expected dirty, got clean" : "expected clean, got dirty"
            return "\(pages) (iova \(TextSyntax.hex(iovaLo))..\(TextSyntax.hex(iovaHi)))\(where_) \(what)"
        }
        for r in inMappings.prefix(limit) { out.append(render(r, "")) }
        if inMappings.count > limit { out.append("… and \(inMappings.count - limit) more runs inside mappings") }
        let room = max(2, limit - min(limit, inMappings.count))
        for r in outsideMappings.prefix(room) { out.append(render(r, " outside any mapping")) }
        if outsideMappings.count > room { out.append("… and \(outsideMappings.count - room) more runs outside mappings") }
        if unlistedPages > 0 { out.append("… and \(unlistedPages) more differing pages after those runs (not listed)") }
        return out
    }

    public var description: String { lines().joined(separator: "; ") }
}

/// Compares the outcome of one event against an expectation. Only fields
/// the expectation states are compared (a hand-written scenario may state
/// only the result).
public enum OutcomeComparison {
    /// - Parameters:
    ///   - coverage: page ranges (relative to the bitmap's base) that lie
    ///     inside mappings, for splitting bitmap differences.
    public static func differences(expected: Event, actual: Event, coverage: [Range<UInt64>],
                                   ignored: Set<OutcomeField> = []) -> [Difference] {
        var out: [Difference] = []
        func field<T: Equatable>(_ name: String, _ e: T?, _ a: T?, _ show: (T) -> String) {
            guard let e else { return }
            if e != a { out.append(.field(name: name, expected: show(e), actual: a.map(show) ?? "nothing")) }
        }
        field("result", expected.result, actual.result, describe)
        switch (expected.body, actual.body) {
        case (.unmapDMA(let e), .unmapDMA(let a)):
            field("unmap.size", e.sizeOut, a.sizeOut, TextSyntax.size)
        case (.groupGetStatus(let e), .groupGetStatus(let a)):
            field("status flags", e.flagsOut, a.flagsOut) { TextSyntax.flags($0, VFIOUAPI.groupStatusFlags) }
        case (.getInfo(let e), .getInfo(let a)):
            if let ei = e.info {
                out += infoDifferences(ei, a.info, ignored: ignored)
            }
        case (.rawIoctl(let e), .rawIoctl(let a)):
            field("argument out", e.argOut, a.argOut) { "\($0.count) bytes" }
        default: break
        }
        if let eb = expected.bitmapOutcome, let expectedBits = eb.out {
            let actualBits = actual.bitmapOutcome?.out
            if actualBits != expectedBits {
                out.append(.bitmap(bitmapDifference(expected: expectedBits, actual: actualBits ?? BitmapBytes(),
                                                    base: eb.base, pgsize: eb.pgsize, coverage: coverage)))
            }
        }
        return out
    }

    static func describe(_ r: CallResult) -> String {
        switch r {
        case .ok(let v): v == 0 ? "ok" : "ok (\(v))"
        case .error(let e): ErrnoName.name(e)
        }
    }

    static func infoDifferences(_ e: IOMMUInfo, _ a: IOMMUInfo?, ignored: Set<OutcomeField>) -> [Difference] {
        guard var a else { return [.field(name: "info", expected: "written back", actual: "nothing")] }
        var e = e
        if ignored.contains(.migrationCapHole) {
            func zeroHole(_ i: inout IOMMUInfo) {
                for k in i.caps.indices {
                    if case .migration(let f, _, let p, let m) = i.caps[k].body {
                        i.caps[k].body = .migration(flags: f, hole: 0, pgsizeBitmap: p, maxDirtyBitmapSize: m)
                    }
                }
            }
            zeroHole(&e)
            zeroHole(&a)
        }
        var out: [Difference] = []
        func f<T: Equatable>(_ n: String, _ x: T, _ y: T) {
            if x != y { out.append(.field(name: n, expected: "\(x)", actual: "\(y)")) }
        }
        f("info.argsz", e.argsz, a.argsz)
        f("info.flags", e.flags, a.flags)
        f("info.iova_pgsizes", TextSyntax.hex(e.iovaPgsizes), TextSyntax.hex(a.iovaPgsizes))
        f("info.cap_offset", e.capOffset, a.capOffset)
        let n = max(e.caps.count, a.caps.count)
        for i in 0..<n {
            let x = i < e.caps.count ? TextPrinter.capability(e.caps[i]) : "none"
            let y = i < a.caps.count ? TextPrinter.capability(a.caps[i]) : "none"
            f("info.cap[\(i)]", x, y)
        }
        return out
    }

    /// The differing bits of two buffers as runs, split by `coverage`.
    public static func bitmapDifference(expected: BitmapBytes, actual: BitmapBytes, base: UInt64, pgsize: UInt64,
                                        coverage: [Range<UInt64>]) -> BitmapDifference {
        let (runs, unlisted) = differingRuns(expected, actual)
        var inside: [PageRun] = [], outside: [PageRun] = []
        for r in runs {
            for (piece, covered) in split(r.pages, by: coverage) {
                let pr = PageRun(pages: piece, expectedDirty: r.expectedDirty)
                if covered { inside.append(pr) } else { outside.append(pr) }
            }
        }
        return BitmapDifference(base: base, pgsize: pgsize, inMappings: inside, outsideMappings: outside,
                                lengths: expected.count == actual.count ? nil : (expected.count, actual.count),
                                unlistedPages: unlisted)
    }

    /// The most differing runs a comparison lists; the pages past them are
    /// only counted, so memory stays bounded whatever the bitmaps hold.
    public static let maxRuns = 4096

    /// The runs of bits that differ over the bytes both buffers have, in
    /// order, each with what the expectation said, at most ``maxRuns``; and
    /// how many differing bits come after the last one listed. One pass
    /// over both buffers' segments: equal fills cost nothing, different
    /// fills are counted without visiting their bytes once the list is full.
    static func differingRuns(_ expected: BitmapBytes, _ actual: BitmapBytes) -> ([PageRun], UInt64) {
        var runs: [PageRun] = []
        var unlisted: UInt64 = 0
        func add(_ lo: UInt64, _ hi: UInt64, _ dirty: Bool) {
            if let last = runs.last, last.expectedDirty == dirty, last.pages.upperBound == lo {
                runs[runs.count - 1].pages = last.pages.lowerBound..<hi
            } else if runs.count < maxRuns {
                runs.append(PageRun(pages: lo..<hi, expectedDirty: dirty))
            } else {
                unlisted &+= hi - lo
            }
        }
        func differ(_ e: UInt8, _ a: UInt8, at offset: UInt64) {
            var d = e ^ a
            while d != 0 {
                let i = UInt64(d.trailingZeroBitCount)
                d &= d - 1
                add(offset * 8 + i, offset * 8 + i + 1, (e >> UInt8(i)) & 1 == 1)
            }
        }
        var es = SegmentCursor(expected), acur = SegmentCursor(actual)
        var offset: UInt64 = 0
        let n = min(expected.count, actual.count)
        while offset < n {
            let span = min(es.remaining, acur.remaining, n - offset)
            switch (es.segment, acur.segment) {
            case (.fill(let e, _), .fill(let a, _)):
                if e == a { break }
                if (e == 0 && a == 0xFF) || (e == 0xFF && a == 0) {
                    add(offset * 8, (offset + span) * 8, e == 0xFF)
                } else {
                    // Byte by byte while runs are still listed, then counted.
                    var k: UInt64 = 0
                    while k < span && runs.count < maxRuns {
                        differ(e, a, at: offset + k)
                        k += 1
                    }
                    unlisted &+= UInt64((e ^ a).nonzeroBitCount) * (span - k)
                }
            default:
                for k in 0..<span { differ(es.byte(k), acur.byte(k), at: offset + k) }
            }
            es.advance(span)
            acur.advance(span)
            offset += span
        }
        return (runs, unlisted)
    }

    /// Walks a bitmap's segments by byte counts.
    struct SegmentCursor {
        let segments: [BitmapBytes.Segment]
        var index = 0
        /// Bytes already passed in the current segment.
        var into: UInt64 = 0

        init(_ b: BitmapBytes) {
            segments = b.segments
            advance(0)
        }

        var segment: BitmapBytes.Segment { segments[index] }
        var remaining: UInt64 { index < segments.count ? segments[index].byteCount - into : 0 }

        /// Byte `k` past the cursor, within the current segment.
        func byte(_ k: UInt64) -> UInt8 {
            switch segments[index] {
            case .fill(let b, _): b
            case .literal(let l): l[Int(into + k)]
            }
        }

        mutating func advance(_ n: UInt64) {
            into += n
            // Empty segments are passed over too.
            while index < segments.count && into >= segments[index].byteCount {
                into -= segments[index].byteCount
                index += 1
            }
        }
    }

    /// `r` cut at the edges of `coverage` (sorted), each piece with whether
    /// it lies inside.
    static func split(_ r: Range<UInt64>, by coverage: [Range<UInt64>]) -> [(Range<UInt64>, Bool)] {
        var out: [(Range<UInt64>, Bool)] = []
        var lo = r.lowerBound
        var i = coverage.partitioningIndex { $0.upperBound > lo }
        while lo < r.upperBound {
            if i < coverage.count && coverage[i].lowerBound <= lo {
                let hi = min(r.upperBound, coverage[i].upperBound)
                out.append((lo..<hi, true))
                lo = hi
                i += 1
            } else {
                let hi = min(r.upperBound, i < coverage.count ? coverage[i].lowerBound : r.upperBound)
                out.append((lo..<hi, false))
                lo = hi
            }
        }
        return out
    }
}

extension Array {
    /// The first index whose element satisfies `pred`, for an array
    /// partitioned so that all that fail come first.
    public func partitioningIndex(where pred: (Element) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pred(self[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
