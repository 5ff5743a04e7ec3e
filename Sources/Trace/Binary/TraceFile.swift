#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only file accessed with `pread`, so readers hold only what they
/// are decoding, never the whole trace.
public final class TraceFile {
    public let path: String
    /// The open file; -1 for bytes in memory.
    let fd: Int32
    /// The bytes, when the file is in memory (``init(bytes:name:)``).
    private var memory: [UInt8]? = nil
    public let size: Int

    /// Opens `path`; `-` is standard input (see ``spoolStandardInput()``).
    public init(path: String) throws(TraceError) {
        self.path = path
        if path == "-" {
            let (fd, size) = try Self.spoolStandardInput()
            self.fd = Self.outOfTheWay(fd)
            self.size = size
            return
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw .io("cannot stat", errno: e)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw .io("cannot read", errno: EISDIR)
        }
        let kind = st.st_mode & S_IFMT
        if kind == S_IFCHR || kind == S_IFBLK {
            // /dev/zero or a disk would be read without end.
            close(fd)
            throw .device
        }
        if kind != S_IFREG {
            // A pipe, a FIFO, a socket (`/dev/stdin` from a pipe, `<(...)`):
            // its size says nothing, so it is read to its end into a
            // temporary file, as standard input is.
            defer { close(fd) }
            let (spooled, size) = try Self.spool(fd, what: "cannot read")
            self.fd = Self.outOfTheWay(spooled)
            self.size = size
            return
        }
        self.fd = Self.outOfTheWay(fd)
        self.size = Int(st.st_size)
    }

    /// Standard input as a file readers can `pread`: itself when it is a
    /// regular file (`< trace.vft`), else (a pipe, a terminal) copied to an
    /// unnamed temporary file, so memory stays constant whatever its size
    /// and it can be read more than once. Returns the fd and the size.
    static func spoolStandardInput() throws(TraceError) -> (Int32, Int) {
        var st = stat()
        if fstat(0, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
            let fd = fcntl(0, F_DUPFD_CLOEXEC, 3)
            guard fd >= 0 else { throw .io("cannot read standard input", errno: errno) }
            return (fd, Int(st.st_size))
        }
        return try spool(0, what: "cannot read standard input")
    }

    /// Everything `source` gives until its end, copied to an unnamed
    /// temporary file (memory stays constant). Returns that fd and the size.
    static func spool(_ source: Int32, what: String) throws(TraceError) -> (Int32, Int) {
        let fd = try unnamedTemporaryFile()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var size = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { Posix.read(source, into: $0) }
            if n < 0 {
                let e = errno
                close(fd)
                throw .io(what, errno: e)
            }
            if n == 0 { break }
            if let e = buffer.withUnsafeBytes({ Posix.writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) {
                close(fd)
                throw .io("cannot spool it to a temporary file", errno: e)
            }
            size += n
        }
        return (fd, size)
    }

    /// A file with no name in $TMPDIR (or /tmp), gone when closed.
    static func unnamedTemporaryFile() throws(TraceError) -> Int32 {
        let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        // O_TMPFILE (__O_TMPFILE | O_DIRECTORY; Glibc's module leaves it out).
        let tmpfile: Int32 = 0o20_000_000 | O_DIRECTORY
        var fd = open(dir, tmpfile | O_RDWR | O_CLOEXEC, 0o600)
        if fd < 0 {
            // A file system without O_TMPFILE: a named file, unlinked at once.
            var template = Array("\(dir)/.vfiotrace-XXXXXX".utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw .io("cannot create a temporary file in \(dir)", errno: errno) }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        return fd
    }

    /// Bytes in memory read as a file named `name` (the fuzz harnesses'
    /// input, tests).
    public init(bytes: [UInt8], name: String) {
        fd = -1
        memory = bytes
        size = bytes.count
        path = name
    }

    /// Input files are read while a replay opens real VFIO nodes, and a
    /// kernel hands out the lowest free fd: an input held at fd 3 would
    /// shift every real fd of the replay by one from the trace's own
    /// numbering (and from recordings of earlier replays). So the input
    /// moves above the range a VMM-like trace uses (64 and up).
    static func outOfTheWay(_ fd: Int32) -> Int32 {
        guard fd < 64 else { return fd }
        let moved = fcntl(fd, F_DUPFD_CLOEXEC, 64)
        guard moved >= 0 else { return fd }
        close(fd)
        return moved
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Up to `count` bytes at `offset`; fewer at the end of the file.
    public func read(at offset: Int, count: Int) throws(TraceError) -> [UInt8] {
        guard offset >= 0, offset < size, count > 0 else { return [] }
        let n = min(count, size - offset)
        if let memory { return Array(memory[offset..<offset + n]) }
        var buf = [UInt8](repeating: 0, count: n)
        var done = 0
        while done < n {
            let r = buf.withUnsafeMutableBytes { Posix.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[done...]), at: offset + done) }
            if r < 0 { throw .io("read at offset \(offset + done)", errno: errno) }
            if r == 0 { break }
            done += r
        }
        if done < n { buf.removeSubrange(done...) }
        return buf
    }

    func u32(at offset: Int) throws(TraceError) -> UInt32? {
        let b = try read(at: offset, count: 4)
        guard b.count == 4 else { return nil }
        return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
    }
}
