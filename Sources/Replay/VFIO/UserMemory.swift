import Trace
#if canImport(Glibc)
import Glibc
#endif

/// User memory made to match a recorded ``UserPointer``: readable and
/// writable pages, read-only pages, a hole the kernel faults on, NULL, or a
/// kernel address. A pointer with `accessibleBytes` is placed so that its
/// first N bytes end exactly at an inaccessible page, which is how a
/// recording's "buffer faults part-way" is reproduced on a real kernel.
final class UserRegion {
    /// The address handed to the kernel.
    let address: UInt64
    /// Bytes from `address` that can be read back.
    let readable: Int
    private let mapping: UnsafeMutableRawPointer?
    private let mappingLength: Int

    /// An address above the x86_64 user range: `access_ok()` fails.
    static let kernelAddress: UInt64 = 0xffff_8880_0000_0000

    static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// Memory for `pointer` covering `size` bytes, holding `contents` at the
    /// start (zeros after). Nil when the host refuses the mapping.
    init?(_ pointer: UserPointer, size: UInt64, contents: BitmapBytes? = nil) {
        let page = Self.pageSize
        switch pointer.pointerClass {
        case .null:
            address = pointer.pageOffset
            readable = 0
            mapping = nil
            mappingLength = 0
            return
        case .kernel:
            address = Self.kernelAddress + pointer.pageOffset
            readable = 0
            mapping = nil
            mappingLength = 0
            return
        case .unmapped, .valid, .readOnly:
            break
        }
        let wanted = Int(clamping: size)
        let accessible = pointer.pointerClass == .unmapped ? 0 : min(wanted, Int(clamping: pointer.accessibleBytes ?? size))
        let offset = pointer.accessibleBytes == nil ? Int(pointer.pageOffset) % page : 0
        // [lead pages: accessible bytes, ending at a page edge when cut short][guard and the rest: PROT_NONE]
        let accessiblePages = (offset + accessible + page - 1) / page
        let rest = (wanted - accessible + page - 1) / page + 1
        let length = (accessiblePages + rest) * page
        let p = mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { return nil }
        mapping = p
        mappingLength = length
        let start: UnsafeMutableRawPointer
        if pointer.accessibleBytes != nil {
            start = p + accessiblePages * page - accessible
        } else {
            start = p + offset
        }
        address = UInt64(UInt(bitPattern: start))
        readable = accessible
        if accessiblePages > 0 {
            guard mprotect(p, accessiblePages * page, PROT_READ | PROT_WRITE) == 0 else { return nil }
            // The prior contents, run by run (a 256 MiB fill is a memset).
            contents?.forEachPiece(in: 0..<UInt64(accessible)) { at, piece in
                let dst = start + Int(at)
                switch piece {
                case .fill(let b, let n): if b != 0 { memset(dst, Int32(b), Int(n)) }
                case .literal(let l): l.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: l.count) }
                }
            }
            if pointer.pointerClass == .readOnly { _ = mprotect(p, accessiblePages * page, PROT_READ) }
        }
    }

    /// The first `count` bytes as a trace keeps them, read word by word
    /// where the memory is readable, the rest from `fallback`.
    func contents(_ count: UInt64, fallback: BitmapBytes?) -> BitmapBytes {
        var b = BitmapBytes.Builder()
        let n = min(count, UInt64(readable))
        if n > 0, let base = UnsafeRawPointer(bitPattern: UInt(address)) {
            if address % 8 == 0 {
                let words = Int(n / 8)
                b.append(words: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt64.self), count: words))
                b.append(contentsOf: UnsafeRawBufferPointer(start: base + words * 8, count: Int(n % 8)))
            } else {
                b.append(contentsOf: UnsafeRawBufferPointer(start: base, count: Int(n)))
            }
        }
        if n < count {
            var filled = n
            fallback?.forEachPiece(in: n..<count) { at, piece in
                switch piece {
                case .fill(let v, let k): b.append(v, count: k)
                case .literal(let l): b.append(contentsOf: l)
                }
                filled = at + piece.byteCount
            }
            if filled < count { b.append(0, count: count - filled) }
        }
        return b.build()
    }

    deinit {
        if let mapping { munmap(mapping, mappingLength) }
    }
}
