import Testing
@testable import Record
#if canImport(Glibc)
import Glibc
#endif

/// Lays out BTF the way the kernel does (include/uapi/linux/btf.h), base
/// or split on top of a base, so the reader is tested on every shape it
/// has to walk: typedef and const chains, forward declarations resolved in
/// the module, anonymous unions, bitfields (kind_flag offsets).
struct BTFBuilder {
    var strings: [UInt8] = [0]
    var types: [UInt8] = []
    var nextID: UInt32
    let stringBase: Int

    init(firstID: UInt32 = 1, stringBase: Int = 0) {
        nextID = firstID
        self.stringBase = stringBase
    }

    mutating func name(_ s: String) -> UInt32 {
        guard !s.isEmpty else { return 0 }
        let off = UInt32(stringBase + strings.count)
        strings += Array(s.utf8) + [0]
        return off
    }

    mutating func word(_ v: UInt32) { for i in 0..<4 { types.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }

    @discardableResult
    mutating func type(_ n: String, kind: UInt8, vlen: Int = 0, kindFlag: Bool = false, _ sizeOrType: UInt32, extra: [UInt32] = []) -> UInt32 {
        word(name(n))
        word(UInt32(vlen) | UInt32(kind) << 24 | (kindFlag ? 1 << 31 : 0))
        word(sizeOrType)
        for e in extra { word(e) }
        defer { nextID += 1 }
        return nextID
    }

    /// A struct; members are (name, type, bit offset, bitfield size).
    @discardableResult
    mutating func structType(_ n: String, size: UInt32, union: Bool = false, _ members: [(String, UInt32, UInt32, UInt32)]) -> UInt32 {
        let flag = members.contains { $0.3 != 0 }
        var extra: [UInt32] = []
        for m in members { extra += [name(m.0), m.1, flag ? m.2 | m.3 << 24 : m.2] }
        return type(n, kind: union ? BTF.kindUnion : BTF.kindStruct, vlen: members.count, kindFlag: flag, size, extra: extra)
    }

    func blob() -> [UInt8] {
        var h: [UInt8] = [0x9f, 0xeb, 1, 0]
        func w(_ v: Int) { for i in 0..<4 { h.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        w(24); w(0); w(types.count); w(types.count); w(strings.count)
        return h + types + strings
    }
}

@Suite("BTF member offsets")
struct BTFTests {
    /// vmlinux-like base: int, iommu_group, a forward-declared vfio_group,
    /// vfio_device; a module on top defines vfio_group.
    static func kernelLike() throws -> BTF {
        var base = BTFBuilder()
        let int = base.type("int", kind: BTF.kindInt, 4, extra: [32])
        let group = base.structType("iommu_group", size: 16, [("kobj", int, 0, 0), ("name", int, 32, 0), ("id", int, 96, 0)])
        let fwd = base.type("vfio_group", kind: BTF.kindFwd, 0)
        let fwdPtr = base.type("", kind: BTF.kindPtr, fwd)
        base.structType("vfio_device", size: 64, [("dev", int, 0, 0), ("flags", int, 32, 3), ("open", int, 35, 1),
                                                  ("group", fwdPtr, 192, 0)])
        let groupPtr = base.type("", kind: BTF.kindPtr, group)
        let typedefPtr = base.type("iommu_group_t", kind: BTF.kindTypedef, groupPtr)
        let constPtr = base.type("", kind: BTF.kindConst, typedefPtr)
        var btf = BTF()
        try btf.add(bytes: base.blob(), source: "vmlinux")
        var module = BTFBuilder(firstID: base.nextID, stringBase: base.strings.count)
        let inner = module.structType("", size: 16, union: true, [("cookie", int, 0, 0), ("iommu_group", constPtr, 64, 0)])
        module.structType("vfio_group", size: 40, [("refs", int, 0, 0), ("", inner, 64, 0)])
        try btf.add(bytes: module.blob(), source: "vfio")
        return btf
    }

    @Test("a pointer chain through split BTF, typedefs, const and an anonymous union")
    func chain() throws {
        let btf = try Self.kernelLike()
        #expect(try btf.offsets(start: "vfio_device", path: ["group", "iommu_group", "id"]) == [24, 16, 12])
    }

    @Test("missing structs and members, and non-pointers, are named in the error")
    func errors() throws {
        let btf = try Self.kernelLike()
        #expect(throws: BTF.BTFError.noStruct("vfio_container")) { try btf.offsets(start: "vfio_container", path: ["group"]) }
        #expect(throws: BTF.BTFError.noMember("iommu_group", "nid")) {
            try btf.offsets(start: "vfio_device", path: ["group", "iommu_group", "nid"])
        }
        #expect(throws: BTF.BTFError.notPointerToStruct("vfio_device", "dev")) { try btf.offsets(start: "vfio_device", path: ["dev", "x"]) }
        // A bitfield has no byte offset to fetch from.
        #expect(throws: BTF.BTFError.noMember("vfio_device", "open")) { try btf.offsets(start: "vfio_device", path: ["open"]) }
    }

    @Test("damaged blobs are refused with the reason, never read past their end")
    func damaged() throws {
        var b = BTFBuilder()
        b.type("int", kind: BTF.kindInt, 4, extra: [32])
        b.structType("s", size: 8, [("a", 1, 0, 0), ("b", 1, 32, 0)])
        let good = b.blob()
        var btf = BTF()
        #expect(throws: BTF.BTFError.malformed("x", "no BTF magic (big-endian BTF is not read)")) { try btf.add(bytes: [0, 1] + good.dropFirst(2), source: "x") }
        for cut in stride(from: 0, to: good.count, by: 3) {
            var t = BTF()
            #expect(throws: BTF.BTFError.self) { try t.add(bytes: Array(good.prefix(cut)), source: "cut") }
        }
        var lying = good
        lying[12] = 0xff // type section length past the end
        #expect(throws: BTF.BTFError.malformed("y", "sections run past the end (\(good.count) bytes)")) { try btf.add(bytes: lying, source: "y") }
        var unknownKind = good
        unknownKind[24 + 7] = 30
        #expect(throws: BTF.BTFError.malformed("z", "unknown type kind 30 at offset 24")) { try btf.add(bytes: unknownKind, source: "z") }
    }

    @Test("this host's own kernel BTF", .enabled(if: access("/sys/kernel/btf/vmlinux", R_OK) == 0,
                                              "the host kernel exposes no BTF at /sys/kernel/btf/vmlinux"))
    func hostKernel() throws {
        let btf = try BTF.load()
        #expect(try btf.offsets(start: "list_head", path: ["next"]) == [0])
        #expect(try btf.offsets(start: "list_head", path: ["prev"]) == [8])
        // task_struct->mm->pgd: two offsets, mm well inside task_struct.
        let o = try btf.offsets(start: "task_struct", path: ["mm", "pgd"])
        #expect(o.count == 2 && o[0] > 64)
    }
}
