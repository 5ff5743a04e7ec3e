import CRecord
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// What the recorder reads from a stopped tracee: memory, strings, what an
/// fd refers to, and what a pointer points at.
struct TraceeMemory {
    let pid: pid_t

    /// `count` bytes at `address`, or nil when not all of them can be read.
    func read(_ address: UInt64, _ count: Int) -> [UInt8]? {
        guard count > 0 else { return [] }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { crec_read(pid, address, $0.baseAddress, count) }
        return n == count ? buf : nil
    }

    /// As many of `count` bytes at `address` as can be read.
    func readPrefix(_ address: UInt64, _ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var at = address
        var left = count
        while left > 0 {
            let chunk = min(left, 1 << 20)
            guard let b = read(at, chunk) else {
                // Byte by byte up to the fault, within the failing chunk's first page.
                var k = 0
                while k < min(chunk, 4096), let one = read(at + UInt64(k), 1) { out += one; k += 1 }
                break
            }
            out += b
            at += UInt64(chunk)
            left -= chunk
        }
        return out
    }

    /// Up to `count` bytes at `address` as a trace keeps a bitmap, read a
    /// MiB at a time and appended a word at a time (a 256 MiB buffer of
    /// zeros costs one pass, not a byte-by-byte build), stopping at the
    /// first unreadable byte.
    func readBitmap(_ address: UInt64, _ count: Int) -> BitmapBytes {
        var b = BitmapBytes.Builder()
        var words = [UInt64](repeating: 0, count: (1 << 20) / 8)
        var at = address
        var left = count
        while left > 0 {
            let chunk = min(left, 1 << 20)
            let n = words.withUnsafeMutableBytes { crec_read(pid, at, $0.baseAddress, chunk) }
            if n != chunk {
                b.append(contentsOf: readPrefix(at, chunk))
                break
            }
            words.withUnsafeBufferPointer { w in
                b.append(words: UnsafeBufferPointer(rebasing: w[0..<(chunk / 8)]))
                if chunk % 8 != 0 {
                    let last = w[chunk / 8]
                    for i in 0..<(chunk % 8) { b.append(UInt8(truncatingIfNeeded: last >> (8 * UInt64(i))), count: 1) }
                }
            }
            at += UInt64(chunk)
            left -= chunk
        }
        return b.build()
    }

    func u32(_ a: UInt64) -> UInt32? { read(a, 4).map { b in (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[$1]) << (8 * UInt32($1)) } } }

    /// A NUL-terminated string of at most `max` bytes.
    func string(_ address: UInt64, max: Int = 4096) -> String? {
        var out: [UInt8] = []
        var at = address
        while out.count < max {
            // Up to the end of the page: the next one may not be mapped.
            let chunk = Swift.min(256, 4096 - Int(at & 4095), max - out.count)
            guard let b = read(at, chunk) else { return nil }
            if let nul = b.firstIndex(of: 0) {
                out += b[..<nul]
                return String(decoding: out, as: UTF8.self)
            }
            out += b
            at += UInt64(chunk)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// What fd `fd` of the tracee refers to (`/proc/PID/fd/N`).
    func fdTarget(_ fd: Int32) -> String? { Posix.readLink("/proc/\(pid)/fd/\(fd)") }

    /// The kind of VFIO fd behind `fd`, with the group number for groups;
    /// nil for fds that are not VFIO's.
    func vfioKind(_ fd: Int32) -> (FDKind, UInt32?)? {
        fdTarget(fd).flatMap(Self.vfioKind(ofTarget:))
    }

    /// The kind of VFIO file an fd's `/proc/PID/fd` link names.
    static func vfioKind(ofTarget t: String) -> (FDKind, UInt32?)? {
        if t == "/dev/vfio/vfio" { return (.container, nil) }
        if t.hasPrefix("/dev/vfio/"), let n = UInt32(t.dropFirst("/dev/vfio/".count)) { return (.group, n) }
        if t == "anon_inode:[vfio-device]" { return (.device, nil) }
        return nil
    }

    /// The VFIO groups the process has open now (`/proc/PID/fd`), for a
    /// recorder attaching to a process that opened them before.
    func openGroups() -> Set<UInt32> {
        var out: Set<UInt32> = []
        for name in directoryEntries("/proc/\(pid)/fd") ?? [] {
            if let fd = Int32(name), let (kind, group) = vfioKind(fd), kind == .group, let group { out.insert(group) }
        }
        return out
    }

    struct Mapping {
        let start: UInt64, end: UInt64
        let readable: Bool, writable: Bool
    }

    /// The tracee's mappings (`/proc/PID/maps`).
    func mappings() -> [Mapping] {
        guard let f = fopen("/proc/\(pid)/maps", "r") else { return [] }
        defer { fclose(f) }
        var out: [Mapping] = []
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, 4096, f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = s.split(separator: " ", maxSplits: 2)
            guard fields.count >= 2 else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let a = UInt64(range[0], radix: 16), let b = UInt64(range[1], radix: 16) else { continue }
            let perms = Array(fields[1])
            out.append(Mapping(start: a, end: b, readable: perms.first == "r", writable: perms.count > 1 && perms[1] == "w"))
        }
        return out
    }

    /// A pointer recorded by class: NULL, a kernel address, unmapped,
    /// read-only or valid memory, with how many of `length` bytes are
    /// accessible when fewer than all.
    func classify(_ address: UInt64, length: UInt64) -> UserPointer {
        let pageOffset = address % 4096
        if address == 0 { return .null }
        if address >= 0x0000_8000_0000_0000 { return UserPointer(.kernel, pageOffset: pageOffset) }
        let maps = mappings()
        guard let first = maps.first(where: { $0.start <= address && address < $0.end }), first.readable else {
            return UserPointer(.unmapped, pageOffset: pageOffset)
        }
        // Accessible bytes: contiguous mappings of the same class.
        var end = first.end
        for m in maps where m.start == end && m.readable && m.writable == first.writable { end = m.end }
        let accessible = end - address
        let cls: UserPointer.Class = first.writable ? .valid : .readOnly
        return UserPointer(cls, pageOffset: pageOffset, accessibleBytes: accessible < length ? accessible : nil)
    }
}
