#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only file accessed with `pread`, so readers hold only what they
/// are decoding, never the whole trace.
public final class TraceFile {
    public let path: String
    let fd: Int32
    public let size: Int

    public init(path: String) throws(TraceError) {
        self.path = path
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
        self.fd = Self.outOfTheWay(fd)
        self.size = Int(st.st_size)
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

    deinit { close(fd) }

    /// Up to `count` bytes at `offset`; fewer at the end of the file.
    public func read(at offset: Int, count: Int) throws(TraceError) -> [UInt8] {
        guard offset < size, count > 0 else { return [] }
        let n = min(count, size - offset)
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
