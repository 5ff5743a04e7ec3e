/// Errors reading or writing a trace file. Each names where in the file it
/// happened; the CLI prints them as one line with the path in front.
public enum TraceError: Error, Equatable, Sendable, CustomStringConvertible {
    case io(String, errno: Int32)
    case empty
    /// A character or block device: its reading would not end (/dev/zero).
    case device
    case badHeader(offset: Int, String)
    case newerVersion(major: UInt16, minor: UInt16)
    case corrupt(offset: Int, String)
    case truncated(offset: Int, String)
    case zstd(String)

    public var description: String {
        switch self {
        case .io(let what, let e): "\(what): \(ErrnoName.name(e)) (\(String(cString: strerror(e))))"
        case .empty: "empty file (0 bytes): not a trace"
        case .device: "a device, not a file or a pipe: give a trace file, a pipe, or - for standard input"
        case .badHeader(let o, let why): "offset \(o): \(why)"
        case .newerVersion(let ma, let mi):
            "format version \(ma).\(mi) is newer than this vfiotrace reads (\(TraceHeader.currentMajor).x); upgrade vfiotrace"
        case .corrupt(let o, let why): "offset \(o): corrupt: \(why)"
        case .truncated(let o, let why): "offset \(o): truncated: \(why)"
        case .zstd(let why): "zstd: \(why)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
