import Trace
#if canImport(Glibc)
import Glibc
#endif

/// The kernel's tracing file system: where it is, and reading and writing
/// its control files with errors that name the file.
struct Tracefs {
    let root: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `/sys/kernel/tracing`, else the old `/sys/kernel/debug/tracing`;
    /// mounts tracefs at the first when neither is there (a freshly booted
    /// system often has it unmounted).
    static func locate() throws -> Tracefs {
        for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] where access(root + "/kprobe_events", F_OK) == 0 {
            return Tracefs(root: root)
        }
        let root = "/sys/kernel/tracing"
        if mount("tracefs", root, "tracefs", 0, nil) == 0, access(root + "/kprobe_events", F_OK) == 0 {
            return Tracefs(root: root)
        }
        let why = String(cString: strerror(errno))
        throw Failure(description: "--pins needs the kernel's tracefs with kprobe events; mounting it at \(root) failed (\(why)): run as root on a kernel with CONFIG_KPROBE_EVENTS, or mount it: mount -t tracefs nodev \(root)")
    }

    func path(_ relative: String) -> String { root + "/" + relative }

    func read(_ relative: String) throws -> String {
        let p = path(relative)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "\(p): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        switch Posix.readToEnd(fd, limit: 16 << 20, chunk: 16384) {
        case .success(let out): return String(decoding: out, as: UTF8.self)
        case .failure(let e): throw Failure(description: "\(p): \(e)")
        }
    }

    /// Writes `text` to a control file (appending keeps what others defined
    /// in `kprobe_events`).
    func write(_ relative: String, _ text: String, append: Bool = false) throws {
        let p = path(relative)
        let fd = open(p, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC))
        guard fd >= 0 else { throw Failure(description: "\(p): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        if bytes.last != 10 { bytes.append(10) }
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else {
            let why = String(cString: strerror(errno))
            var hint = ""
            if relative.hasSuffix("kprobe_events"), let log = try? read("error_log"), let last = log.split(separator: "\n").suffix(3).first {
                hint = "; the kernel's error_log says: " + last.trimmingSpaces
            }
            throw Failure(description: "writing '\(text)' to \(p): \(why)\(hint)")
        }
    }

    func exists(_ relative: String) -> Bool { access(path(relative), F_OK) == 0 }

    /// Names in a directory of tracefs.
    func list(_ relative: String) -> [String] { directoryEntries(path(relative)) ?? [] }
}
