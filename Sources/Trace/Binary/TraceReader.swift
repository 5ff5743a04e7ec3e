/// Reads a `.vft` trace: the header at open, then events streamed frame by
/// frame with bounded memory (``events(from:)``). Damaged frames are
/// collected as problems and skipped; the rest of the file is still read.
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

    public convenience init(path: String) throws(TraceError) {
        try self.init(file: try TraceFile(path: path))
    }

    public init(file: TraceFile) throws(TraceError) {
        self.file = file
        guard file.size > 0 else { throw .empty }
        guard let magic = try file.u32(at: 0) else {
            throw .badHeader(offset: 0, "file of \(file.size) bytes is too short to be a trace")
        }
        if magic == FrameScanner.zstdMagic {
            throw .badHeader(offset: 0, "a zstd file without a vfiotrace header (not a trace)")
        }
        guard magic == TraceHeader.skippableMagic else {
            // Text (a scenario, or a trace printed by `cat`) is the common mistake.
            let head = (try? file.read(at: 0, count: min(file.size, 256))) ?? []
            let text = !head.isEmpty && head.allSatisfy { $0 == 9 || $0 == 10 || $0 == 13 || (0x20..<0x7f).contains($0) || $0 >= 0x80 }
                && String(validating: head.prefix(while: { $0 < 0x80 }), as: UTF8.self) != nil
            throw .badHeader(offset: 0, text
                ? "text, not a binary trace (a scenario? `vfiotrace compile FILE -o FILE.vft` makes one; replay, diff and conform read scenarios as they are)"
                : "not a vfiotrace trace (bad magic 0x\(String(magic, radix: 16)))")
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

    /// All events in memory. For tests and small traces only.
    public func readAll() throws -> [Event] {
        var out: [Event] = []
        var events = try events()
        while let e = try events.next() { out.append(e) }
        if let p = events.problems.first {
            throw p.isTruncation ? TraceError.truncated(offset: p.offset, p.reason) : TraceError.corrupt(offset: p.offset, p.reason)
        }
        return out
    }
}
