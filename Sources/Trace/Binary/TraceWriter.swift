#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a `.vft` trace as it goes, so that a writer killed at any moment
/// leaves a readable file.
///
/// Events collect in an in-memory frame that is compressed and written with
/// one `write(2)` when it reaches ``Options/frameBytes`` or is older than
/// ``Options/frameInterval``; each frame is an independent zstd frame with
/// its own checksum, so a crash loses at most the frame being collected.
/// ``close()`` appends the seek index. Memory stays bounded by one frame
/// whatever the trace's length.
public final class TraceWriter {
    public struct Options: Sendable {
        /// Close a frame once its records reach this many bytes.
        public var frameBytes: Int = 1 << 20
        /// Close a frame once it has been open this long (nanoseconds).
        public var frameInterval: UInt64 = 250_000_000
        /// zstd compression level.
        public var level: Int32 = 3
        /// `fdatasync` after each frame (durability across power loss, not
        /// just process death).
        public var syncEachFrame: Bool = false

        public init(frameBytes: Int = 1 << 20, frameInterval: UInt64 = 250_000_000, level: Int32 = 3,
                    syncEachFrame: Bool = false) {
            self.frameBytes = frameBytes
            self.frameInterval = frameInterval
            self.level = level
            self.syncEachFrame = syncEachFrame
        }
    }

    public let path: String
    public let options: Options
    private let fd: Int32
    private let compressor: ZstdCompressor
    /// The frame being collected (its records and their delta state) and
    /// the counts, in one stored property so that an append is one
    /// exclusive access to the writer.
    private struct OpenFrame {
        var bytes = ByteWriter(capacity: 1 << 16)
        var codec = EventCodec()
        var records = 0
        var events: UInt64 = 0
        var rawBytes: UInt64 = 0

        mutating func append(_ event: Event) {
            let before = bytes.bytes.count
            codec.encode(event, into: &bytes)
            records += 1
            events += 1
            rawBytes &+= UInt64(bytes.bytes.count - before)
        }
    }
    private var frame = OpenFrame()
    private var frameOpenedAt: UInt64 = 0
    private var fileOffset: Int = 0
    private var index = SeekIndex()
    private var closed = false
    /// Events written so far (including those in the open frame).
    public var eventCount: UInt64 { frame.events }
    /// Bytes of uncompressed records written (for compression statistics).
    public var rawBytes: UInt64 { frame.rawBytes }

    public convenience init(path: String, header: TraceHeader, options: Options = Options()) throws(TraceError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("cannot create", errno: errno) }
        try self.init(fd: fd, name: path, header: header, options: options)
    }

    /// Writes to a command's output (`-o`; `-` is standard output).
    public convenience init(output: OutputFile, header: TraceHeader, options: Options = Options()) throws(TraceError) {
        let fd: Int32
        do { fd = try output.openForWriting() } catch { throw .io("cannot create", errno: errno) }
        try self.init(fd: fd, name: output.name, header: header, options: options)
    }

    /// Writes to `fd` (which it closes), called `name` in messages.
    public init(fd: Int32, name: String, header: TraceHeader, options: Options = Options()) throws(TraceError) {
        self.path = name
        self.options = options
        self.fd = fd
        do {
            compressor = try ZstdCompressor(level: options.level)
            try writeAll(header.encoded())
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit {
        if !closed { try? close() }
    }

    static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public func append(_ event: Event) throws(TraceError) {
        precondition(!closed, "append after close")
        if frame.records == 0 { frameOpenedAt = Self.monotonicNow() }
        frame.append(event)
        if frame.bytes.bytes.count >= options.frameBytes {
            try flush()
        } else if frame.records & 255 == 0 {
            // The clock is read every 256 records, not every record: a
            // writer with a quiet stream (the recorder) calls flushIfDue()
            // itself when idle.
            try flushIfDue()
        }
    }

    /// Closes the open frame if it has been open longer than the interval.
    /// A recorder calls this when idle so that quiet periods still reach disk.
    public func flushIfDue() throws(TraceError) {
        if frame.records > 0 && Self.monotonicNow() &- frameOpenedAt >= options.frameInterval { try flush() }
    }

    /// Compresses and writes the open frame, if any.
    public func flush() throws(TraceError) {
        guard frame.records > 0 else { return }
        var end = ByteWriter()
        end.varint(UInt64(frame.records))
        end.u32(CRC32C.checksum(frame.bytes.bytes))
        frame.bytes.u8(RecordType.frameEnd.rawValue)
        frame.bytes.blob(end.bytes)
        let compressed = try compressor.compressFrame(frame.bytes.bytes)
        let first = eventCount - UInt64(frame.records)
        index.entries.append(SeekIndex.Entry(offset: UInt64(fileOffset), compressedSize: UInt32(compressed.count),
                                             contentSize: UInt32(frame.bytes.bytes.count), firstEvent: first,
                                             eventCount: UInt32(frame.records), crc: CRC32C.checksum(compressed)))
        frame.bytes.bytes.removeAll(keepingCapacity: frame.bytes.bytes.capacity <= 4 << 20)
        frame.records = 0
        frame.codec.reset()
        try writeAll(compressed)
        if options.syncEachFrame { _ = fdatasync(fd) }
    }

    /// Writes the last frame and the seek index, and closes the file.
    public func close() throws(TraceError) {
        guard !closed else { return }
        closed = true
        defer { Glibc.close(fd) }
        try flush()
        try writeAll(index.encoded())
    }

    /// The number of frames written so far.
    public var frameCount: Int { index.entries.count }

    private func writeAll(_ bytes: [UInt8]) throws(TraceError) {
        if let e = bytes.withUnsafeBytes({ Posix.writeAll(fd, $0) }) { throw .io("write to \(path)", errno: e) }
        fileOffset += bytes.count
    }
}
