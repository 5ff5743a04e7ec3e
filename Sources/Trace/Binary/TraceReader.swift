/// Reads a `.vft` trace: the header at open, then events streamed frame by
/// frame with bounded memory. Damaged frames are reported through the
/// problem callback and skipped; the rest of the file is still read.
public final class TraceReader {
    public let file: TraceFile
    public let header: TraceHeader
    /// File offset of the first frame after the header.
    public let dataStart: Int
    /// The seek index written at clean close, when present and intact.
    public let storedIndex: SeekIndex?
    /// Where the stored index starts (data frames end there).
    public let storedIndexOffset: Int?

    public var path: String { file.path }

    public init(path: String) throws(TraceError) {
        file = try TraceFile(path: path)
        guard file.size > 0 else { throw .empty }
        guard let magic = try file.u32(at: 0) else {
            throw .badHeader(offset: 0, "file of \(file.size) bytes is too short to be a trace")
        }
        if magic == FrameScanner.zstdMagic {
            throw .badHeader(offset: 0, "a zstd file without a vfiotrace header (not a trace)")
        }
        guard magic == TraceHeader.skippableMagic else {
            throw .badHeader(offset: 0, "not a vfiotrace trace (bad magic 0x\(String(magic, radix: 16)))")
        }
        guard let len = try file.u32(at: 4) else { throw .badHeader(offset: 4, "header cut short") }
        guard Int(len) <= TraceHeader.maxContent else { throw .badHeader(offset: 4, "header length \(len) is implausible") }
        let content = try file.read(at: 8, count: Int(len))
        guard content.count == Int(len) else {
            throw .truncated(offset: 8 + content.count, "header needs \(len) bytes, file has \(content.count)")
        }
        header = try TraceHeader.decode(content: content, fileOffset: 8)
        dataStart = 8 + Int(len)
        if let (idx, off) = SeekIndex.load(from: file, dataStart: dataStart) {
            storedIndex = idx
            storedIndexOffset = off
        } else {
            storedIndex = nil
            storedIndexOffset = nil
        }
    }

    public func scanner(from offset: Int? = nil) throws(TraceError) -> FrameScanner {
        try FrameScanner(file: file, offset: offset ?? dataStart)
    }

    /// A problem met while streaming: damaged or truncated bytes, or damaged records.
    public struct Problem: Sendable, CustomStringConvertible {
        public var offset: Int
        public var length: Int
        public var reason: String
        public var isTruncation: Bool
        public var description: String {
            "offset \(offset): \(isTruncation ? "truncated" : "corrupt"): \(reason) (\(length) bytes)"
        }
    }

    /// Streams events in file order starting at ordinal `from`, until
    /// `body` returns false. With a stored index it decodes only the frames
    /// from the one holding `from`.
    public func forEachEvent(from: UInt64 = 0, problem: (Problem) -> Void = { _ in },
                             _ body: (Event) throws -> Bool) throws {
        var ordinal: UInt64 = 0
        var startOffset = dataStart
        if from > 0, let idx = storedIndex {
            guard let e = idx.entry(containing: from) else { return }
            startOffset = Int(e.offset)
            ordinal = e.firstEvent
        }
        var s = try scanner(from: startOffset)
        while let item = try s.next() {
            switch item {
            case .data(let off, let size, _, let content):
                for e in content.events {
                    defer { ordinal += 1 }
                    if ordinal < from { continue }
                    if try !body(e) { return }
                }
                if let d = content.damage {
                    problem(Problem(offset: off, length: size, reason: "frame records damaged: \(d)", isTruncation: false))
                }
            case .index, .skippable:
                continue
            case .damaged(let off, let len, let why):
                problem(Problem(offset: off, length: len, reason: why, isTruncation: false))
            case .truncated(let off, let len, let why):
                problem(Problem(offset: off, length: len, reason: why, isTruncation: true))
            }
        }
    }

    /// All events in memory. For tests and small traces only.
    public func readAll() throws -> [Event] {
        var out: [Event] = []
        var firstProblem: Problem? = nil
        try forEachEvent(problem: { p in if firstProblem == nil { firstProblem = p } }) { out.append($0); return true }
        if let p = firstProblem {
            throw p.isTruncation ? TraceError.truncated(offset: p.offset, p.reason) : TraceError.corrupt(offset: p.offset, p.reason)
        }
        return out
    }
}
