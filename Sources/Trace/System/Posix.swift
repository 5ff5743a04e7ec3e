#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few POSIX calls vfiotrace makes in many places, once each: a read
/// and a write that retry on EINTR and handle short transfers, readlink,
/// uname, the current directory, strerror.
public enum Posix {
    /// `read(2)` retried on EINTR: the bytes read (0 at the end), or -1
    /// with `errno` set.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    /// `pread(2)` retried on EINTR.
    public static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        while true {
            let n = Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    /// Writes all of `bytes` (short writes continued, EINTR retried); the
    /// errno of the first failure, or nil. A write that makes no progress
    /// is reported as EIO.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            done += n
        }
        return nil
    }

    /// Everything readable from `fd` until its end, at most `limit` bytes
    /// (more is an error: EFBIG); the errno on failure.
    public static func readToEnd(_ fd: Int32, limit: Int, chunk: Int = 1 << 16) -> Result<[UInt8], PosixError> {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, into: $0) }
            if n < 0 { return .failure(PosixError(errno)) }
            if n == 0 { return .success(out) }
            out += buf[0..<n]
            if out.count > limit { return .failure(PosixError(EFBIG)) }
        }
    }

    /// A small file's text (a `/proc` file), or nil when it cannot be read
    /// or holds more than `limit` bytes.
    public static func readSmallFile(_ path: String, limit: Int = 1 << 16) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard case .success(let bytes) = readToEnd(fd, limit: limit, chunk: 4096) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A new private directory (mode 0700) named `prefix` + six random
    /// characters (`mkdtemp`), or nil.
    public static func makeTemporaryDirectory(prefix: String) -> String? {
        var template = Array((prefix + "XXXXXX").utf8CString)
        return template.withUnsafeMutableBufferPointer { buf in
            mkdtemp(buf.baseAddress!).map { String(cString: $0) }
        }
    }

    /// Removes `path` and everything under it, not following symbolic
    /// links (a link is removed, not what it names). Best effort.
    public static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) {
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
            for n in names { removeTree(path + "/" + n) }
            _ = rmdir(path)
        } else {
            _ = unlink(path)
        }
    }

    /// The target of a symbolic link, or nil.
    public static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = Glibc.readlink(path, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// This kernel's release (`6.1.0-56-amd64`) and this host's node name.
    public static func uname() -> (release: String, node: String) {
        var u = utsname()
        _ = Glibc.uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let node = withUnsafeBytes(of: &u.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return (release, node)
    }

    /// The current directory, or `.` when it cannot be named.
    public static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return "." }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `path` from the current directory when it is relative.
    public static func absolutePath(_ path: String) -> String {
        path.hasPrefix("/") ? path : currentDirectory() + "/" + path
    }

    /// The running executable's path (`/proc/self/exe`).
    public static func executablePath() -> String? { readLink("/proc/self/exe") }

    public static func describe(_ e: Int32) -> String { String(cString: strerror(e)) }
}

/// A failed system call's errno, with the host's message.
public struct PosixError: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }
    public var description: String { Posix.describe(code) }
}

/// What sysfs says about IOMMU groups: which devices a group holds, whether
/// they are mdev devices (an emulated IOMMU: the group pins, it is not
/// IOMMU-backed), and which group a PCI device is in.
public enum IOMMUGroups {
    /// The device names in group `group` (`/sys/kernel/iommu_groups/N/devices`).
    public static func devices(inGroup group: String) -> [String]? {
        directoryEntries("/sys/kernel/iommu_groups/\(group)/devices")
    }

    /// Whether device `name` is an mdev (mediated) device.
    public static func isMdev(_ name: String) -> Bool {
        access("/sys/bus/mdev/devices/\(name)", F_OK) == 0
    }

    /// How group `group` reaches memory: emulated when it holds an mdev
    /// device, IOMMU-backed when it holds others, unknown when empty or
    /// unreadable.
    public static func kind(ofGroup group: String) -> GroupKind {
        guard let devices = devices(inGroup: group), !devices.isEmpty else { return .unknown }
        return devices.contains(where: isMdev) ? .emulated : .iommu
    }

    /// How the group behind node `node` (`/dev/vfio/N`) reaches memory.
    public static func kind(ofNode node: String) -> GroupKind {
        groupName(ofNode: node).map(kind(ofGroup:)) ?? .unknown
    }

    /// The group number in a node path or link target (`/dev/vfio/12` → 12).
    public static func groupName(ofNode node: String) -> String? {
        node.split(separator: "/").last.map(String.init)
    }

    /// The group node of a PCI device (`0000:00:03.0` → `/dev/vfio/N`).
    public static func node(ofPCIDevice bdf: String) -> String? {
        Posix.readLink("/sys/bus/pci/devices/\(bdf)/iommu_group").flatMap(groupName(ofNode:)).map { "/dev/vfio/\($0)" }
    }
}
