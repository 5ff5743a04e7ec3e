#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a command writes its output (`-o FILE`) so that nothing the user
/// has is lost: a regular file (or a new one) is written beside the target
/// under a temporary name and renamed over it only when the command
/// succeeds, so a failure leaves the old file as it was and no partial
/// output; a symbolic link is followed and its target replaced the same
/// way; anything else (a device such as /dev/null, a FIFO) is written in
/// place and never removed. An output that is one of the command's inputs
/// is refused before anything is written. `-` is standard output.
public struct OutputFile: Sendable {
    /// The path the user named.
    public let target: String
    /// The path to write: a temporary file beside the (resolved) target, or
    /// the target itself when it is not a regular file.
    public let writePath: String
    /// Where the temporary file goes on success; nil when writing in place.
    let finalPath: String?
    /// `-`: the output is the command's standard output (its messages then
    /// belong on standard error).
    public var isStandardOutput: Bool { target == "-" }
    /// What messages call the output.
    public var name: String { isStandardOutput ? "standard output" : target }

    public struct Refused: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Prepares to write `target`; `inputs` are the files the command reads.
    /// `binary`: a binary trace is not written to a terminal.
    public static func begin(_ target: String, inputs: [String], binary: Bool = true) throws(Refused) -> OutputFile {
        if target == "-" {
            if binary && isatty(1) == 1 {
                throw Refused(description: "-o -: standard output is a terminal; a binary trace belongs in a file or a pipe (`| vfiotrace cat -`)")
            }
            return OutputFile(target: target, writePath: "/dev/stdout", finalPath: nil)
        }
        var st = stat()
        let exists = stat(target, &st) == 0
        if exists {
            for input in inputs where input != "-" {
                var ist = stat()
                if stat(input, &ist) == 0 && ist.st_dev == st.st_dev && ist.st_ino == st.st_ino {
                    throw Refused(description: "\(target): is the input \(input); write the output elsewhere")
                }
            }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw Refused(description: "\(target): is a directory") }
            if (st.st_mode & S_IFMT) != S_IFREG {
                return OutputFile(target: target, writePath: target, finalPath: nil)
            }
        }
        // Replace what a link points at, not the link.
        let final = exists ? (resolved(target) ?? target) : target
        let dir = final.lastIndex(of: "/").map { String(final[..<$0]) } ?? "."
        let name = final.split(separator: "/").last.map(String.init) ?? final
        var template = Array("\(dir.isEmpty ? "/" : dir)/.\(name).vfiotrace-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw Refused(description: "\(target): cannot create a file beside it: \(Posix.describe(errno))") }
        close(fd)
        let temp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // The output keeps an existing file's permissions, else 0644.
        chmod(temp, exists ? st.st_mode & 0o7777 : 0o644)
        return OutputFile(target: target, writePath: temp, finalPath: final)
    }

    /// An fd to write the output to: a copy of standard output for `-`
    /// (so that closing it leaves fd 1 alone, and nothing truncates what
    /// standard output is appending to), else the file to write, created
    /// or truncated.
    public func openForWriting() throws(Refused) -> Int32 {
        let fd = isStandardOutput ? fcntl(1, F_DUPFD_CLOEXEC, 3) : open(writePath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Refused(description: "\(name): cannot write: \(Posix.describe(errno))") }
        return fd
    }

    /// The output is complete: it takes the target's place.
    public func commit() throws(Refused) {
        guard let finalPath else { return }
        guard rename(writePath, finalPath) == 0 else {
            let e = errno
            unlink(writePath)
            throw Refused(description: "\(target): cannot put the output in place: \(Posix.describe(e))")
        }
    }

    /// The command failed: the temporary file goes, the target stays as it was.
    public func abandon() {
        if finalPath != nil { unlink(writePath) }
    }

    private static func resolved(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
