/// A Linux errno number (asm-generic numbering: x86_64 and arm64), as a
/// trace records it and as the bitmap engine answers: the numbers the
/// kernel returns, independent of the libc vfiotrace runs on.
public struct LinuxErrno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let EPERM = LinuxErrno(rawValue: 1)
    public static let ENOENT = LinuxErrno(rawValue: 2)
    public static let EINTR = LinuxErrno(rawValue: 4)
    public static let EIO = LinuxErrno(rawValue: 5)
    public static let E2BIG = LinuxErrno(rawValue: 7)
    public static let EBADF = LinuxErrno(rawValue: 9)
    public static let EAGAIN = LinuxErrno(rawValue: 11)
    public static let ENOMEM = LinuxErrno(rawValue: 12)
    public static let EACCES = LinuxErrno(rawValue: 13)
    public static let EFAULT = LinuxErrno(rawValue: 14)
    public static let EBUSY = LinuxErrno(rawValue: 16)
    public static let EEXIST = LinuxErrno(rawValue: 17)
    public static let ENODEV = LinuxErrno(rawValue: 19)
    public static let EINVAL = LinuxErrno(rawValue: 22)
    public static let ENOSPC = LinuxErrno(rawValue: 28)
    public static let ENOTTY = LinuxErrno(rawValue: 25)
    public static let ENOSYS = LinuxErrno(rawValue: 38)
    public static let EBADFD = LinuxErrno(rawValue: 77)
    public static let EOPNOTSUPP = LinuxErrno(rawValue: 95)

    /// `EINVAL`, or `E123` for a number without a name here.
    public var description: String { ErrnoName.name(rawValue) }
}

extension CallResult {
    /// A failure with a Linux errno.
    public static func error(_ e: LinuxErrno) -> CallResult { .error(e.rawValue) }
}

/// errno names for Linux x86_64 / arm64 (asm-generic numbering), the ones a
/// VFIO trace meets plus the common rest.
public enum ErrnoName {
    public static let table: [(Int32, String)] = [
        (1, "EPERM"), (2, "ENOENT"), (3, "ESRCH"), (4, "EINTR"), (5, "EIO"), (6, "ENXIO"),
        (7, "E2BIG"), (8, "ENOEXEC"), (9, "EBADF"), (10, "ECHILD"), (11, "EAGAIN"),
        (12, "ENOMEM"), (13, "EACCES"), (14, "EFAULT"), (15, "ENOTBLK"), (16, "EBUSY"),
        (17, "EEXIST"), (18, "EXDEV"), (19, "ENODEV"), (20, "ENOTDIR"), (21, "EISDIR"),
        (22, "EINVAL"), (23, "ENFILE"), (24, "EMFILE"), (25, "ENOTTY"), (26, "ETXTBSY"),
        (27, "EFBIG"), (28, "ENOSPC"), (29, "ESPIPE"), (30, "EROFS"), (31, "EMLINK"),
        (32, "EPIPE"), (33, "EDOM"), (34, "ERANGE"), (35, "EDEADLK"), (36, "ENAMETOOLONG"),
        (38, "ENOSYS"), (75, "EOVERFLOW"), (77, "EBADFD"), (95, "EOPNOTSUPP"), (110, "ETIMEDOUT"),
    ]

    public static func name(_ e: Int32) -> String {
        table.first { $0.0 == e }?.1 ?? "E\(e)"
    }

    /// Accepts `EINVAL` or a numeric `E22`.
    public static func number(_ s: String) -> Int32? {
        if let hit = table.first(where: { $0.1 == s }) { return hit.0 }
        if s.hasPrefix("E"), let n = Int32(s.dropFirst()), n > 0 { return n }
        return nil
    }
}
