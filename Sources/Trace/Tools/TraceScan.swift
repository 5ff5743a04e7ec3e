/// A full walk of a trace file: what is intact, what is damaged, and how the
/// stored seek index compares with the frames actually found. Behind
/// `vfiotrace info`, `verify` and `recover`.
public struct TraceScan: Sendable {
    public enum IndexState: Sendable, Equatable {
        /// Present and matching the frames found.
        case intact
        /// No index at the end of the file (e.g. the writer was killed).
        case missing
        /// Present but disagreeing with the frames found.
        case mismatch(String)
    }

    public var fileSize: Int = 0
    public var headerBytes: Int = 0
    public var frames: Int = 0
    public var events: UInt64 = 0
    /// Events per record type name.
    public var countsByType: [String: UInt64] = [:]
    public var unknownRecords: Int = 0
    public var compressedBytes: Int = 0
    public var contentBytes: Int = 0
    public var problems: [TraceReader.Problem] = []
    public var index: IndexState = .missing
    /// The index rebuilt from the frames found.
    public var rebuiltIndex = SeekIndex()
    /// Events known lost (from the stored index, when one survives).
    public var knownLostEvents: UInt64 = 0
    /// The trace's own loss records (the recorder's or `recover`'s): how
    /// many, what they add up to, and the first of them.
    public var losses = LossTally()
    /// First and last timestamps seen.
    public var firstTime: UInt64? = nil
    public var lastTime: UInt64? = nil

    /// True when nothing is damaged, nothing is cut off and the index checks out.
    public var isIntact: Bool { problems.isEmpty && index == .intact }

    public var damagedBytes: Int { problems.reduce(0) { $0 + $1.length } }

    /// What the trace's loss records add up to, as `info` and `verify`
    /// print it: "2 (5 events lost, 1 record of unknown count)"; nil when
    /// it has none.
    public var lossSummary: String? { losses.summary }

    /// Walks the whole file. `eachEvent`, when given, sees every intact event
    /// in order, and `eachProblem` each problem at the place it occurs in the
    /// stream (so that `recover` can put a loss record there).
    public static func run(_ reader: TraceReader, eachEvent: ((Event) throws -> Void)? = nil,
                           eachProblem: ((TraceReader.Problem, _ lostEvents: UInt64?) throws -> Void)? = nil) throws -> TraceScan {
        var s = TraceScan()
        s.fileSize = reader.file.size
        s.headerBytes = reader.dataStart
        var scanner = try reader.scanner()
        let stored = reader.storedIndex
        func lost(in off: Int, _ len: Int) -> UInt64? {
            guard let stored else { return nil }
            return stored.entries.filter { Int($0.offset) >= off && Int($0.offset) < off + len }
                .reduce(UInt64(0)) { $0 + UInt64($1.eventCount) }
        }
        var sawIndexAt: Int? = nil
        // Positions in the file count every event record, known or not.
        var records: UInt64 = 0
        // Counted by raw type and named once at the end: a String key per
        // event was a tenth of a verify.
        var byType = [UInt64](repeating: 0, count: 256)
        while let item = try scanner.next() {
            switch item {
            case .data(let off, let size, let crc, let content):
                let first = records
                var frame = content.records()
                while let (e, _) = frame.next() {
                    s.events += 1
                    byType[Int(e.body.recordType.rawValue)] += 1
                    if case .loss(let l) = e.body { s.losses.add(seq: e.seq, l) }
                    if s.firstTime == nil { s.firstTime = e.time }
                    s.lastTime = e.time
                    try eachEvent?(e)
                }
                records += UInt64(frame.recordCount)
                s.frames += 1
                s.unknownRecords += frame.unknownRecords
                s.compressedBytes += size
                s.rebuiltIndex.entries.append(SeekIndex.Entry(
                    offset: UInt64(off), compressedSize: UInt32(clamping: size), contentSize: 0,
                    firstEvent: first, eventCount: UInt32(clamping: frame.recordCount), crc: crc))
                if let d = frame.damage {
                    let p = TraceReader.Problem(offset: off, length: size,
                                                reason: "frame records damaged at byte \(frame.damageOffset): \(d)",
                                                isTruncation: false)
                    s.problems.append(p)
                    let storedCount = stored?.entries.first { Int($0.offset) == off }.map { UInt64($0.eventCount) }
                    let l = storedCount.map { $0 &- min($0, UInt64(frame.recordCount)) }
                    s.knownLostEvents += l ?? 0
                    try eachProblem?(p, l)
                }
            case .index(let off, _):
                sawIndexAt = off
            case .skippable:
                continue
            case .damaged(let off, let len, let why):
                let p = TraceReader.Problem(offset: off, length: len, reason: why, isTruncation: false)
                s.problems.append(p)
                let l = lost(in: off, len)
                s.knownLostEvents += l ?? 0
                try eachProblem?(p, l)
            case .truncated(let off, let len, let why):
                let p = TraceReader.Problem(offset: off, length: len, reason: why, isTruncation: true)
                s.problems.append(p)
                try eachProblem?(p, lost(in: off, len))
            }
        }
        for (raw, n) in byType.enumerated() where n > 0 {
            if let t = RecordType(rawValue: UInt8(raw)) { s.countsByType[t.name] = n }
        }
        if let stored {
            let a = stored.entries.map { [$0.offset, UInt64($0.compressedSize), $0.firstEvent, UInt64($0.eventCount), UInt64($0.crc)] }
            let b = s.rebuiltIndex.entries.map { [$0.offset, UInt64($0.compressedSize), $0.firstEvent, UInt64($0.eventCount), UInt64($0.crc)] }
            if a == b {
                s.index = .intact
            } else if a.count == b.count, let i = a.indices.first(where: { a[$0] != b[$0] }), a[i][0] == b[i][0], a[i][4] != b[i][4],
                      a.count == b.count {
                s.index = .mismatch("frame at offset \(a[i][0]) differs from the bytes the index recorded (checksum)")
                s.problems.append(TraceReader.Problem(offset: Int(a[i][0]), length: Int(a[i][1]),
                                                      reason: "frame bytes changed since written (checksum mismatch)",
                                                      isTruncation: false))
            } else {
                s.index = .mismatch("index lists \(stored.entries.count) frames / \(stored.eventCount) events, file has \(s.frames) readable frames / \(records) events")
            }
        } else if let at = sawIndexAt {
            s.index = .mismatch("index frame at offset \(at) is damaged or not at the end")
        }
        return s
    }
}

/// Copies every intact event of a damaged trace into a new one, with a loss
/// record where data was lost (Perfetto's "trace recovery" idea).
public enum TraceRecovery {
    public struct Report: Sendable {
        public var keptEvents: UInt64
        public var lossRecords: Int
        public var scan: TraceScan
    }

    public static func recover(_ reader: TraceReader, to output: OutputFile) throws -> Report {
        var header = reader.header
        header.formatMajor = TraceHeader.currentMajor
        header.formatMinor = TraceHeader.currentMinor
        if !header.captureMode.hasSuffix("+recovered") { header.captureMode += "+recovered" }
        let w = try TraceWriter(output: output, header: header)
        var kept: UInt64 = 0
        var losses = 0
        var lastSeq: UInt64 = 0
        var lastTime: UInt64 = 0
        var lastTid: UInt32 = 0
        let scan = try TraceScan.run(reader, eachEvent: { e in
            try w.append(e)
            kept += 1
            lastSeq = e.seq
            lastTime = e.time
            lastTid = e.tid
        }, eachProblem: { p, lost in
            let what = lost.map { "\($0) events" } ?? "an unknown number of events"
            let reason = "recovered: \(what) lost: \(p.description)"
            try w.append(Event(seq: kept == 0 ? 0 : lastSeq &+ 1, time: lastTime, tid: lastTid,
                               .loss(Loss(count: lost ?? 0, reason: reason))))
            lastSeq = kept == 0 ? 0 : lastSeq &+ 1
            losses += 1
        })
        try w.close()
        return Report(keptEvents: kept, lossRecords: losses, scan: scan)
    }
}

/// A trace's loss records, counted in constant memory: a crafted frame of
/// millions of loss records must not make `verify` keep them all.
public struct LossTally: Sendable {
    /// How many records ``listed`` keeps.
    public static let listLimit = 1000
    /// The first ``listLimit`` loss records: their sequence numbers and what they say.
    public private(set) var listed: [(seq: UInt64, loss: Loss)] = []
    /// Every loss record of the trace.
    public private(set) var count = 0
    /// The events they say were lost, saturating at `UInt64.max` (a crafted
    /// trace must not trap the sum).
    public private(set) var eventsLost: UInt64 = 0
    /// Records that do not know how many events were lost (count 0).
    public private(set) var ofUnknownCount = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    public mutating func add(seq: UInt64, _ loss: Loss) {
        count += 1
        let (v, o) = eventsLost.addingReportingOverflow(loss.count)
        eventsLost = o ? .max : v
        if loss.count == 0 { ofUnknownCount += 1 }
        if listed.count < Self.listLimit { listed.append((seq, loss)) }
    }

    /// "2 (5 events lost, 1 record of unknown count)"; nil when there are none.
    public var summary: String? {
        guard count > 0 else { return nil }
        var parts = ["\(eventsLost) events lost"]
        if ofUnknownCount > 0 { parts.append("\(ofUnknownCount) record\(ofUnknownCount == 1 ? "" : "s") of unknown count") }
        return "\(count) (\(parts.joined(separator: ", ")))"
    }
}
