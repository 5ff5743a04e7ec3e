import Trace
#if canImport(Glibc)
import Glibc
#endif

/// The fuzz entry points for what the recorder decodes (see
/// ``TraceFuzzing``): ring-buffer pages and the probe formats that give
/// their records meaning, BTF blobs, and VFIO ioctl arguments and outcomes
/// as they sit in a tracee's memory.
public enum RecordFuzzing {
    /// The five probes' formats as Debian 6.12's tracefs prints them.
    static let probeFormats: [UInt16: (name: String, format: TraceEventFormat)] = {
        let common = "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
        let at = "\tfield:s32 group;\toffset:16;\tsize:4;\tsigned:1;\n\tfield:u64 iova;\toffset:20;\tsize:8;\tsigned:0;\n"
        let ret = "\tfield:s32 ret;\toffset:24;\tsize:4;\tsigned:1;\n"
        let bodies: [(String, UInt16, String)] = [
            ("pin", 1700, at + "\tfield:s32 npage;\toffset:28;\tsize:4;\tsigned:1;\n\tfield:s32 prot;\toffset:32;\tsize:4;\tsigned:1;\n"),
            ("pin_ret", 1701, ret),
            ("unpin", 1702, at + "\tfield:s32 npage;\toffset:28;\tsize:4;\tsigned:1;\n"),
            ("dma_rw", 1703, at + "\tfield:u64 len;\toffset:28;\tsize:8;\tsigned:0;\n\tfield:u8 write;\toffset:36;\tsize:1;\tsigned:0;\n"),
            ("dma_rw_ret", 1704, ret),
        ]
        var out: [UInt16: (name: String, format: TraceEventFormat)] = [:]
        for (name, id, fields) in bodies {
            if let f = TraceEventFormat(text: "name: \(name)\nID: \(id)\nformat:\n\(common)\(fields)\nprint fmt: \"\"\n") { out[id] = (name, f) }
        }
        return out
    }()

    /// A ring-buffer page, its records decoded into pin events.
    public static func ringBufferPage(_ bytes: [UInt8]) {
        let page = RingBufferPage(bytes)
        var decoder = PinEventDecoder(formats: probeFormats)
        for r in page.records { _ = decoder.decode(r) }
        decoder.endOfRead()
        _ = decoder.takeLosses()
        _ = decoder.unfinished()
    }

    /// A tracefs event format file.
    public static func traceEventFormat(_ bytes: [UInt8]) {
        guard let f = TraceEventFormat(text: String(decoding: bytes, as: UTF8.self)) else { return }
        for name in ["common_pid", "group", "iova", "npage", "len", "write", "ret"] { _ = f.value(name, in: bytes) }
    }

    /// A BTF blob, as base and as split BTF on top of itself, and the
    /// member-offset lookups `--pins` makes.
    public static func btf(_ bytes: [UInt8]) {
        var btf = BTF()
        guard (try? btf.add(bytes: bytes, source: "fuzz")) != nil else { return }
        _ = try? btf.add(bytes: bytes, source: "fuzz-split")
        _ = try? btf.offsets(start: "vfio_device", path: ["group", "iommu_group", "id"])
    }

    /// A VFIO ioctl as the recorder meets it: byte 0 the fd kind, bytes
    /// 1-4 the request, 5-12 the call's return value, the rest the
    /// argument in this process's memory (the recorder reads a tracee's
    /// the same way), decoded at entry and at exit.
    public static func ioctl(_ bytes: [UInt8]) {
        guard bytes.count >= 13 else { return }
        let kinds: [FDKind] = [.container, .group, .device]
        let kind = kinds[Int(bytes[0]) % kinds.count]
        let request = bytes[1..<5].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        let ret = Int64(bitPattern: bytes[5..<13].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let arg = Array(bytes[13...])
        let mem = TraceeMemory(pid: getpid())
        arg.withUnsafeBytes { raw in
            let address = UInt64(UInt(bitPattern: raw.baseAddress))
            let call = IoctlDecoder.entry(fd: 3, kind: kind, group: 7, request: 0x3B00 | (request & 0xff), arg: address, mem: mem)
            _ = call.finish(ret, mem)
            if let pin = IoctlDecoder.pinDevice(group: 7, request: request, arg: address, mem: mem) { _ = pin.finish(ret, mem) }
        }
    }
}
