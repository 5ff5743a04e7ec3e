#if canImport(Glibc)
import Glibc
#endif

/// The names in a directory, sorted, without `.` and `..`; nil when it
/// cannot be opened (errno says why). Used for /proc, /sys, tracefs and
/// the corpus alike.
public func directoryEntries(_ path: String) -> [String]? {
    guard let d = opendir(path) else { return nil }
    defer { closedir(d) }
    var out: [String] = []
    while let ent = readdir(d) {
        let name = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { out.append(name) }
    }
    return out.sorted()
}
