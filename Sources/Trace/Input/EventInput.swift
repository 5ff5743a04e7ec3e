#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an input could not be read, naming the file and the place.
public enum InputError: Error, Sendable, CustomStringConvertible {
    /// The file is not a readable trace (or cannot be opened at all).
    case trace(path: String, TraceError)
    /// A syntax error in a text scenario.
    case text(path: String, TextError)
    /// A line that is not UTF-8.
    case notText(path: String, line: Int)
    /// A damaged or truncated part of a binary trace, for a reader that
    /// needs every event (the events around it were read).
    case damaged(path: String, TraceReader.Problem)

    public var description: String {
        switch self {
        case .trace(let p, let e): "\(p): \(e)"
        case .text(let p, let e): "\(p):\(e.line):\(e.column): \(e.message)"
        case .notText(let p, let line):
            "\(p):\(line): not UTF-8 text (a binary trace? use `vfiotrace cat` to read one)"
        case .damaged(let p, let problem): "\(p): \(problem) (`vfiotrace recover` saves the intact frames)"
        }
    }
}

/// A file of events, binary trace or text scenario, told apart by its first
/// bytes (a trace starts with the zstd skippable-frame magic of its
/// header); `-` is standard input, binary or text. Every command that
/// consumes events reads them through this one type:
///
///     let input = try EventInput.open(path)
///     var events = try input.events()
///     while let e = try events.next() { … }
///
/// ``events()`` can be called again to read the file once more (standard
/// input from a pipe is spooled to an unnamed temporary file for that).
public final class EventInput {
    public enum Format: Sendable { case binary, text }

    public let path: String
    public let format: Format
    /// The trace's header, or the text's `!` lines before its first event.
    public let header: TraceHeader
    private let reader: TraceReader?
    private let textFile: TraceFile?

    private init(path: String, format: Format, header: TraceHeader, reader: TraceReader?,
                 textFile: TraceFile?) {
        self.path = path
        self.format = format
        self.header = header
        self.reader = reader
        self.textFile = textFile
    }

    /// Opens a trace or scenario; `-` is standard input, binary or text.
    public static func open(_ path: String) throws(InputError) -> EventInput {
        let file: TraceFile
        do throws(TraceError) { file = try TraceFile(path: path) } catch { throw .trace(path: path, error) }
        return try open(file: file)
    }

    /// Reads an open file (its `path` names it in messages).
    public static func open(file: TraceFile) throws(InputError) -> EventInput {
        let path = file.path
        if isBinaryTrace(file) {
            let reader: TraceReader
            do throws(TraceError) { reader = try TraceReader(file: file) } catch { throw .trace(path: path, error) }
            return EventInput(path: path, format: .binary, header: reader.header, reader: reader, textFile: nil)
        }
        let header = try textHeader(path: path, LineSource(file: file))
        return EventInput(path: path, format: .text, header: header, reader: nil, textFile: file)
    }

    /// How many events a binary trace's seek index says it holds (nil for a
    /// text, or a trace without an intact index). A claim, for progress
    /// totals only: the events are what the frames hold.
    public var indexedEventCount: UInt64? { reader?.storedIndex?.eventCount }

    /// Whether `file` starts like a binary trace (its header's magic).
    public static func isBinaryTrace(_ file: TraceFile) -> Bool {
        guard file.size >= 4, let m = try? file.u32(at: 0) else { return false }
        return m == TraceHeader.skippableMagic
    }

    /// The events from the start; with `only`, just the events of those
    /// record types (a binary trace steps over the others undecoded).
    public func events(only wanted: RecordTypeSet = .all) throws(InputError) -> EventIterator {
        if let reader {
            do throws(TraceError) { return EventIterator(.binary(try reader.events(only: wanted)), path: path) } catch { throw .trace(path: path, error) }
        }
        return EventIterator(.text(TextEvents(path: path, lines: LineSource(file: textFile!))), path: path, only: wanted)
    }

    /// Every event in memory, for what compares whole traces (bisect). A
    /// damaged binary trace is an error here: the first problem.
    public func readAll() throws(InputError) -> [Event] {
        var events = try events()
        var out: [Event] = []
        while let e = try events.next() { out.append(e) }
        if let p = events.problems.first { throw .damaged(path: path, p) }
        return out
    }

    /// The header lines of a text: parsed up to its first event (a syntax
    /// error there is left for the event stream to report).
    private static func textHeader(path: String, _ lines: LineSource) throws(InputError) -> TraceHeader {
        var events = TextEvents(path: path, lines: lines)
        do throws(InputError) { _ = try events.next() } catch {
            if case .trace = error { throw error }
        }
        return events.header
    }

    /// All of standard input.
    static func readStandardInput() throws(InputError) -> [UInt8] {
        switch Posix.readToEnd(0, limit: LineSource.maxLine) {
        case .success(let bytes): return bytes
        case .failure(let e) where e.code == EFBIG:
            throw .text(path: "-", TextError(line: 1, column: 1, message: "standard input over 1 GiB; not a scenario"))
        case .failure(let e): throw .trace(path: "-", .io("cannot read standard input", errno: e.code))
        }
    }

    /// A whole text file (`-`: standard input) as UTF-8, for what needs
    /// all of it at once (a rule scenario).
    public static func readText(_ path: String) throws(InputError) -> String {
        let bytes = path == "-" ? try readStandardInput() : try readFile(path)
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw .notText(path: path, line: Self.firstInvalidLine(bytes))
        }
        return s
    }

    private static func readFile(_ path: String) throws(InputError) -> [UInt8] {
        do throws(TraceError) {
            let f = try TraceFile(path: path)
            guard f.size <= LineSource.maxLine else { throw TraceError.badHeader(offset: 0, "larger than 1 GiB; not a scenario") }
            return try f.read(at: 0, count: f.size)
        } catch {
            throw .trace(path: path, error)
        }
    }

    /// The 1-based line holding the first byte sequence that is not UTF-8.
    static func firstInvalidLine(_ bytes: [UInt8]) -> Int {
        var line = 1
        var start = 0
        for (i, b) in bytes.enumerated() where b == 10 {
            if String(validating: bytes[start..<i], as: UTF8.self) == nil { return line }
            line += 1
            start = i + 1
        }
        return line
    }
}

/// The events of an ``EventInput``, binary or text, one at a time.
public struct EventIterator {
    enum Source {
        case binary(TraceEvents)
        case text(TextEvents)
    }
    /// One of the two is set. Kept apart rather than in an enum so that
    /// advancing one mutates it in place: taking a reader out of an enum
    /// and putting it back copies its state on every event.
    private var binary: TraceEvents?
    private var text: TextEvents?
    public let path: String
    /// For a text, the filter applied after parsing (a binary trace's
    /// reader applies it itself).
    private let wanted: RecordTypeSet

    init(_ source: Source, path: String, only wanted: RecordTypeSet = .all) {
        switch source {
        case .binary(let b): binary = b
        case .text(let t): text = t
        }
        self.path = path
        self.wanted = wanted
    }

    /// The next event, or nil at the end. A text's syntax error or an
    /// unreadable file throws; damage in a binary trace does not (see
    /// ``problems``).
    public mutating func next() throws(InputError) -> Event? {
        if binary != nil {
            do throws(TraceError) { return try binary!.next() } catch { throw .trace(path: path, error) }
        }
        guard text != nil else { return nil }
        while let e = try text!.next() {
            if wanted == .all || wanted.contains(rawType: e.body.recordType.rawValue) { return e }
        }
        return nil
    }

    /// Damaged or truncated parts of a binary trace met so far (skipped:
    /// the events around them are still returned).
    public var problems: [TraceReader.Problem] { binary?.problems ?? [] }
}
