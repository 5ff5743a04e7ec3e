/// Lines of a text file read in chunks, or of bytes already in memory
/// (standard input), so a scenario of any length is parsed in bounded
/// memory: one chunk and the longest line.
struct LineSource {
    private enum Storage {
        case file(TraceFile)
        case bytes([UInt8])
    }
    private let storage: Storage
    private var buffer: [UInt8] = []
    private var start = 0
    /// Bytes from `start` up to here hold no newline.
    private var searched = 0
    private var fileOffset = 0
    private var atEnd = false
    /// 1-based number of the line last returned.
    private(set) var lineNumber = 0

    static let chunk = 1 << 20
    /// A line longer than this is not a scenario line (the longest real
    /// one, a 256 MiB bitmap as runs, is far shorter in practice).
    static let maxLine = 1 << 30

    init(file: TraceFile) { storage = .file(file) }

    init(bytes: [UInt8]) {
        storage = .bytes(bytes)
        buffer = bytes
        atEnd = true
    }

    /// The next line without its newline (a CR before it is the parser's
    /// to drop); nil after the last. A final line without a newline counts,
    /// and an empty file is one empty line, as `TextParser.parse` splits
    /// text.
    mutating func next() throws(InputError) -> [UInt8]? {
        while true {
            guard start <= buffer.count else { return nil }
            if let nl = buffer[max(start, searched)...].firstIndex(of: 10) {
                let line = Array(buffer[start..<nl])
                start = nl + 1
                searched = start
                lineNumber += 1
                return line
            }
            if atEnd {
                let line = Array(buffer[start...])
                start = buffer.count + 1
                lineNumber += 1
                return line
            }
            guard case .file(let f) = storage else { atEnd = true; continue }
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            searched = buffer.count
            guard buffer.count <= Self.maxLine else {
                throw .text(path: f.path, TextError(line: lineNumber + 1, column: 1, message: "line longer than 1 GiB; not a scenario"))
            }
            let more: [UInt8]
            do throws(TraceError) { more = try f.read(at: fileOffset, count: Self.chunk) } catch { throw .trace(path: f.path, error) }
            fileOffset += more.count
            if more.isEmpty { atEnd = true }
            buffer += more
        }
    }
}

/// The events of a text scenario (or `cat` output), one line at a time. The
/// first syntax error ends the stream with the line and column; lines
/// starting `!` set ``header`` and must come before the first event.
public struct TextEvents {
    private var lines: LineSource
    private var parser = TextParser()
    private let path: String

    init(path: String, lines: LineSource) {
        self.path = path
        self.lines = lines
    }

    /// The header as far as the lines read so far set it; complete once
    /// the first event has been returned.
    public var header: TraceHeader { parser.header }

    /// The next event, or nil at the end of the text.
    public mutating func next() throws(InputError) -> Event? {
        while let bytes = try lines.next() {
            guard let line = String(validating: bytes, as: UTF8.self) else {
                throw .notText(path: path, line: lines.lineNumber)
            }
            do throws(TextError) {
                if let e = try parser.parseLine(Substring(line), number: lines.lineNumber) { return e }
            } catch {
                throw .text(path: path, error)
            }
        }
        return nil
    }
}
