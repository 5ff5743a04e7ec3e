import Trace
#if canImport(Glibc)
import Glibc
#endif

/// The kernel's BPF Type Format, read far enough to answer one question:
/// at which byte offset a named struct keeps a member. `--pins` needs it to
/// follow `vfio_device->group->iommu_group->id` in a kprobe's fetch
/// arguments, because those structs are private to the kernel and their
/// layout differs between versions and configs (6.1 cannot do it with
/// fprobe BTF arguments; 6.12 could, but one path for all is simpler).
///
/// Layout (include/uapi/linux/btf.h): a header (magic 0xeB9F, version 1,
/// hdr_len, then type and string sections as offset/length pairs relative
/// to the header's end), a stream of `struct btf_type` records each
/// followed by kind-specific data, and a string table. A module's BTF
/// (`/sys/kernel/btf/<module>`) is *split*: its type ids continue after
/// vmlinux's, and its string offsets after vmlinux's string section.
public struct BTF: Sendable {
    public enum BTFError: Error, CustomStringConvertible, Equatable {
        case unreadable(String, String)
        case malformed(String, String)
        case noStruct(String)
        case noMember(String, String)
        case notPointerToStruct(String, String)

        public var description: String {
            switch self {
            case .unreadable(let p, let why): "\(p): \(why)"
            case .malformed(let p, let why): "\(p): not BTF this reader understands: \(why)"
            case .noStruct(let s): "the kernel's BTF has no struct \(s)"
            case .noMember(let s, let m): "struct \(s) has no member \(m) in the kernel's BTF"
            case .notPointerToStruct(let s, let m): "\(s).\(m) is not a pointer to a struct"
            }
        }
    }

    /// One type record: kind, name, and what the kinds used here need.
    struct TypeRecord: Sendable {
        var kind: UInt8
        var name: String
        /// Referenced type (pointer, typedef, const, volatile, ...).
        var ref: UInt32
        /// Struct and union members.
        var members: [Member]
    }

    struct Member: Sendable {
        var name: String
        var type: UInt32
        /// Offset from the start of the struct in bits.
        var bitOffset: UInt32
        /// Nonzero for a bitfield.
        var bitfieldSize: UInt32
    }

    static let kindInt: UInt8 = 1, kindPtr: UInt8 = 2, kindArray: UInt8 = 3, kindStruct: UInt8 = 4,
               kindUnion: UInt8 = 5, kindEnum: UInt8 = 6, kindFwd: UInt8 = 7, kindTypedef: UInt8 = 8,
               kindVolatile: UInt8 = 9, kindConst: UInt8 = 10, kindRestrict: UInt8 = 11,
               kindFunc: UInt8 = 12, kindFuncProto: UInt8 = 13, kindVar: UInt8 = 14,
               kindDatasec: UInt8 = 15, kindFloat: UInt8 = 16, kindDeclTag: UInt8 = 17,
               kindTypeTag: UInt8 = 18, kindEnum64: UInt8 = 19

    /// Types by id; index 0 is `void`.
    private(set) var types: [TypeRecord] = [TypeRecord(kind: 0, name: "", ref: 0, members: [])]
    /// Struct and union ids by name (first definition with members wins).
    private var structsByName: [String: UInt32] = [:]
    /// The string sections read so far, concatenated (split BTF continues
    /// the base's offsets).
    private var strings: [UInt8] = []

    public init() {}

    /// vmlinux's BTF plus, when given, a module's split BTF on top.
    public static func load(vmlinux: String = "/sys/kernel/btf/vmlinux", modules: [String] = []) throws -> BTF {
        var btf = BTF()
        try btf.add(bytes: readAll(vmlinux), source: vmlinux)
        for m in modules { try btf.add(bytes: readAll(m), source: m) }
        return btf
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BTFError.unreadable(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        switch Posix.readToEnd(fd, limit: 256 << 20) {
        case .success(let out): return out
        case .failure(let e) where e.code == EFBIG: throw BTFError.malformed(path, "larger than 256 MiB")
        case .failure(let e): throw BTFError.unreadable(path, e.description)
        }
    }

    /// Appends one BTF blob: the base first, then split blobs on top of it.
    public mutating func add(bytes b: [UInt8], source: String) throws {
        func u16(_ o: Int) -> UInt32 { UInt32(b[o]) | UInt32(b[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { u16(o) | u16(o + 2) << 16 }
        guard b.count >= 24, u16(0) == 0xeb9f else { throw BTFError.malformed(source, "no BTF magic (big-endian BTF is not read)") }
        guard b[2] == 1 else { throw BTFError.malformed(source, "version \(b[2])") }
        let hdrLen = Int(u32(4))
        guard hdrLen >= 24, hdrLen <= b.count else { throw BTFError.malformed(source, "header length \(hdrLen)") }
        let typeOff = hdrLen + Int(u32(8)), typeLen = Int(u32(12))
        let strOff = hdrLen + Int(u32(16)), strLen = Int(u32(20))
        guard typeOff + typeLen <= b.count, strOff + strLen <= b.count else {
            throw BTFError.malformed(source, "sections run past the end (\(b.count) bytes)")
        }
        strings += b[strOff..<(strOff + strLen)]
        func name(_ off: UInt32) -> String {
            let start = Int(off)
            guard start < strings.count else { return "" }
            var end = start
            while end < strings.count, strings[end] != 0 { end += 1 }
            return String(decoding: strings[start..<end], as: UTF8.self)
        }
        var at = typeOff
        let end = typeOff + typeLen
        while at < end {
            guard at + 12 <= end else { throw BTFError.malformed(source, "type record cut at offset \(at)") }
            let nameOff = u32(at), info = u32(at + 4), sizeOrType = u32(at + 8)
            let vlen = Int(info & 0xffff)
            let kind = UInt8((info >> 24) & 0x1f)
            let kindFlag = info >> 31 != 0
            at += 12
            var rec = TypeRecord(kind: kind, name: name(nameOff), ref: sizeOrType, members: [])
            let extra: Int
            switch kind {
            case Self.kindInt, Self.kindVar, Self.kindDeclTag: extra = 4
            case Self.kindArray: extra = 12
            case Self.kindStruct, Self.kindUnion: extra = 12 * vlen
            case Self.kindEnum, Self.kindFuncProto: extra = 8 * vlen
            case Self.kindDatasec, Self.kindEnum64: extra = 12 * vlen
            case Self.kindPtr, Self.kindFwd, Self.kindTypedef, Self.kindVolatile, Self.kindConst,
                 Self.kindRestrict, Self.kindFunc, Self.kindFloat, Self.kindTypeTag: extra = 0
            default: throw BTFError.malformed(source, "unknown type kind \(kind) at offset \(at - 12)")
            }
            guard at + extra <= end else { throw BTFError.malformed(source, "type record cut at offset \(at - 12)") }
            if kind == Self.kindStruct || kind == Self.kindUnion {
                for i in 0..<vlen {
                    let m = at + 12 * i
                    let off = u32(m + 8)
                    rec.members.append(Member(name: name(u32(m)), type: u32(m + 4),
                                              bitOffset: kindFlag ? off & 0xff_ffff : off,
                                              bitfieldSize: kindFlag ? off >> 24 : 0))
                }
                if !rec.name.isEmpty, structsByName[rec.name] == nil {
                    structsByName[rec.name] = UInt32(types.count)
                }
            }
            at += extra
            types.append(rec)
        }
    }

    /// Follows typedefs and qualifiers to the type they name.
    func resolve(_ id: UInt32) -> UInt32 {
        var id = id
        var hops = 0
        while Int(id) < types.count, hops < 64 {
            switch types[Int(id)].kind {
            case Self.kindTypedef, Self.kindVolatile, Self.kindConst, Self.kindRestrict, Self.kindTypeTag:
                id = types[Int(id)].ref
                hops += 1
            default:
                return id
            }
        }
        return id
    }

    /// Finds `member` in struct `name`, looking through anonymous struct
    /// and union members; the byte offset and the member's type id.
    func member(_ member: String, of name: String) throws -> (offset: UInt32, type: UInt32) {
        guard let sid = structsByName[name] else { throw BTFError.noStruct(name) }
        func search(_ id: UInt32, _ base: UInt32, _ depth: Int) -> (UInt32, UInt32)? {
            guard depth < 8, Int(id) < types.count else { return nil }
            for m in types[Int(id)].members {
                if m.name == member, m.bitfieldSize == 0, m.bitOffset % 8 == 0 {
                    return (base &+ m.bitOffset / 8, m.type)
                }
                if m.name.isEmpty {
                    let inner = resolve(m.type)
                    let k = Int(inner) < types.count ? types[Int(inner)].kind : 0
                    if k == Self.kindStruct || k == Self.kindUnion,
                       let hit = search(inner, base &+ m.bitOffset / 8, depth + 1) { return hit }
                }
            }
            return nil
        }
        guard let (o, t) = search(sid, 0, 0) else { throw BTFError.noMember(name, member) }
        return (o, t)
    }

    /// Byte offsets of a pointer chain: `["vfio_device", "group",
    /// "iommu_group", "id"]` gives the offset of `group` in vfio_device,
    /// of `iommu_group` in the struct `group` points to, and of `id` in the
    /// struct that one points to.
    public func offsets(start: String, path: [String]) throws -> [UInt32] {
        var structName = start
        var out: [UInt32] = []
        for (i, m) in path.enumerated() {
            let (off, type) = try member(m, of: structName)
            out.append(off)
            guard i + 1 < path.count else { break }
            let ptr = resolve(type)
            guard Int(ptr) < types.count, types[Int(ptr)].kind == Self.kindPtr else {
                throw BTFError.notPointerToStruct(structName, m)
            }
            let target = resolve(types[Int(ptr)].ref)
            guard Int(target) < types.count, [Self.kindStruct, Self.kindFwd].contains(types[Int(target)].kind),
                  !types[Int(target)].name.isEmpty else {
                throw BTFError.notPointerToStruct(structName, m)
            }
            structName = types[Int(target)].name
        }
        return out
    }
}
