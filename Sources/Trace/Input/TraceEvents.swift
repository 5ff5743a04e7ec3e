/// The events of a binary trace in file order, pulled one at a time:
///
///     var events = reader.events()
///     while let e = try events.next() { … }
///     if let p = events.problems.first { … }
///
/// Swift has no throwing synchronous `for … in`, so this is an iterator with
/// a throwing `next()` (the shape of swift-nio's decoders), not a
/// `Sequence`. Memory is one decoded frame at a time. Damaged or truncated
/// bytes do not end the stream: they are collected in ``problems`` and the
/// frames after them are still read; only a failing read of the file
/// itself throws.
public struct TraceEvents {
    private var scanner: FrameScanner
    /// The current frame's records, decoded one per event handed out.
    private var frame: FrameContent.Records?
    /// The current frame's place in the file, for its damage report (a
    /// reader that stops inside the frame never sees it).
    private var frameOffset = 0
    private var frameSize = 0
    /// Position in the file of the current frame's first record, from 0
    /// (unknown records count, as in the seek index).
    private var frameStart: UInt64
    private let from: UInt64
    private let wanted: RecordTypeSet
    /// Every problem met so far, in file order.
    public private(set) var problems: [TraceReader.Problem] = []

    init(reader: TraceReader, from: UInt64, only wanted: RecordTypeSet = .all) throws(TraceError) {
        self.wanted = wanted
        var start = reader.dataStart
        var first: UInt64 = 0
        if from > 0, let idx = reader.storedIndex {
            if let e = idx.entry(containing: from) {
                start = Int(e.offset)
                first = e.firstEvent
            } else {
                // Past the last event: nothing to read.
                start = reader.file.size
            }
        }
        scanner = try reader.scanner(from: start)
        frameStart = first
        self.from = from
    }

    /// The next event, or nil at the end of the file.
    public mutating func next() throws(TraceError) -> Event? {
        while true {
            if frame != nil {
                // Decoded in place: copying the records' state out of the
                // optional and back would cost a copy per event.
                while let (e, position) = frame!.next() {
                    if frameStart + UInt64(position) >= from { return e }
                }
                let records = frame!
                frameStart += UInt64(records.recordCount)
                frame = nil
                if let d = records.damage {
                    // The records decoded before the damage were handed out.
                    problems.append(.init(offset: frameOffset, length: frameSize,
                                          reason: "frame records damaged: \(d)", isTruncation: false))
                }
            }
            guard let item = try scanner.next() else { return nil }
            switch item {
            case .data(let off, let size, _, let content):
                frame = content.records(only: wanted)
                frameOffset = off
                frameSize = size
            case .index, .skippable:
                continue
            case .damaged(let off, let len, let why):
                problems.append(.init(offset: off, length: len, reason: why, isTruncation: false))
            case .truncated(let off, let len, let why):
                problems.append(.init(offset: off, length: len, reason: why, isTruncation: true))
            }
        }
    }
}

extension TraceReader {
    /// The events from ordinal `from` on. With a stored index only the
    /// frames from the one holding `from` are decompressed.
    /// `only`: the record types wanted; the others are stepped over
    /// without decoding (a pre-pass that looks for a few kinds of event).
    public func events(from: UInt64 = 0, only wanted: RecordTypeSet = .all) throws(TraceError) -> TraceEvents {
        try TraceEvents(reader: self, from: from, only: wanted)
    }
}
