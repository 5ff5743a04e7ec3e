import Testing
@testable import Record
import Trace

/// The probes' formats as tracefs prints them (captured from Debian 6.12 in
/// the VM lab; 6.1 prints the same layout).
enum ProbeFormats {
    static func text(_ name: String, id: Int, fields: [(String, String, Int, Int, Bool)]) -> String {
        var s = "name: \(name)\nID: \(id)\nformat:\n"
        s += "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
        s += "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
        s += "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
        s += "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
        for f in fields { s += "\tfield:\(f.0) \(f.1);\toffset:\(f.2);\tsize:\(f.3);\tsigned:\(f.4 ? 1 : 0);\n" }
        return s + "\nprint fmt: \"(%lx)\", REC->__probe_ip\n"
    }

    static let entry = [("unsigned long", "__probe_ip", 8, 8, false)]
    static let ret = [("unsigned long", "__probe_func", 8, 8, false), ("unsigned long", "__probe_ret_ip", 16, 8, false),
                      ("s32", "ret", 24, 4, true)]
    static let all: [(String, Int, [(String, String, Int, Int, Bool)])] = [
        ("pin", 1700, entry + [("s32", "group", 16, 4, true), ("u64", "iova", 20, 8, false), ("s32", "npage", 28, 4, true), ("s32", "prot", 32, 4, true)]),
        ("pin_ret", 1701, ret),
        ("unpin", 1702, entry + [("s32", "group", 16, 4, true), ("u64", "iova", 20, 8, false), ("s32", "npage", 28, 4, true)]),
        ("dma_rw", 1703, entry + [("s32", "group", 16, 4, true), ("u64", "iova", 20, 8, false), ("u64", "len", 28, 8, false), ("u8", "write", 36, 1, false)]),
        ("dma_rw_ret", 1704, ret),
    ]

    static func decoder() -> PinEventDecoder {
        var formats: [UInt16: (name: String, format: TraceEventFormat)] = [:]
        for (name, id, fields) in all { formats[UInt16(id)] = (name, TraceEventFormat(text: text(name, id: id, fields: fields))!) }
        return PinEventDecoder(formats: formats)
    }

    /// A record of probe `name` from task `pid` with field values.
    static func record(_ name: String, time: UInt64, pid: Int32, _ values: [String: Int64],
                       in table: [(String, Int, [(String, String, Int, Int, Bool)])] = all, size: Int = 40) -> RingBufferPage.Record {
        let (_, id, fields) = table.first { $0.0 == name }!
        var d = [UInt8](repeating: 0, count: size)
        d[0] = UInt8(id & 0xff); d[1] = UInt8(id >> 8)
        for i in 0..<4 { d[4 + i] = UInt8(truncatingIfNeeded: pid >> (8 * Int32(i))) }
        for f in fields { if let v = values[f.1] { for i in 0..<f.3 { d[f.2 + i] = UInt8(truncatingIfNeeded: v >> (8 * Int64(i))) } } }
        return RingBufferPage.Record(time: time, data: d)
    }
}

@Suite("Kernel pin events from probe records")
struct PinDecoderTests {
    @Test("format files: ids, offsets, sizes, sign")
    func formatParse() throws {
        let (name, id, fields) = ProbeFormats.all[0]
        let f = try #require(TraceEventFormat(text: ProbeFormats.text(name, id: id, fields: fields)))
        #expect(f.id == 1700)
        #expect(f.fields["iova"] == .init(offset: 20, size: 8, signed: false))
        #expect(f.fields["common_pid"] == .init(offset: 4, size: 4, signed: true))
        #expect(f.value("group", in: [0, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [0xfe, 0xff, 0xff, 0xff]) == -2)
        #expect(f.value("prot", in: [1, 2, 3]) == nil)
        #expect(TraceEventFormat(text: "name: x\nformat:\n") == nil)
        let layout = RingBufferPage.Layout(headerPage: """
        \tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
        \tfield: local_t commit;\toffset:8;\tsize:4;\tsigned:1;
        \tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
        \tfield: char data;\toffset:12;\tsize:4084;\tsigned:1;
        """)
        #expect(layout.commitSize == 4 && layout.dataOffset == 12)
    }

    @Test("a call and its return on the same task make one event with the kernel's result")
    func pairing() {
        var d = ProbeFormats.decoder()
        #expect(d.decode(ProbeFormats.record("pin", time: 100, pid: 7, ["group": 5, "iova": 0x3000, "npage": 2, "prot": 3])).isEmpty)
        // Another task's dma_rw in between, failing.
        #expect(d.decode(ProbeFormats.record("dma_rw", time: 110, pid: 8, ["group": 5, "iova": 0x20ff0, "len": 32, "write": 1])).isEmpty)
        #expect(d.oldestOpenCall == 100)
        let pin = d.decode(ProbeFormats.record("pin_ret", time: 120, pid: 7, ["ret": 2]))
        #expect(pin.map(\.body) == [.pin(Pin(group: 5, iova: 0x3000, npage: 2, prot: 3, result: .ok(2)))])
        #expect(pin.first?.time == 100 && pin.first?.tid == 7)
        let rw = d.decode(ProbeFormats.record("dma_rw_ret", time: 130, pid: 8, ["ret": -14]))
        #expect(rw.map(\.body) == [.dmaRW(DMARW(group: 5, iova: 0x20ff0, length: 32, write: true, result: .error(14)))])
        let unpin = d.decode(ProbeFormats.record("unpin", time: 140, pid: 7, ["group": 5, "iova": 0x3000, "npage": 1]))
        #expect(unpin.map(\.body) == [.unpin(Unpin(group: 5, iova: 0x3000, npage: 1))])
        #expect(d.oldestOpenCall == nil)
        #expect(d.eventsRead == 5)
    }

    @Test("lost returns and orphan returns become loss records; open calls end without a result")
    func losses() {
        var d = ProbeFormats.decoder()
        _ = d.decode(ProbeFormats.record("pin", time: 100, pid: 7, ["group": 5, "iova": 0x1000, "npage": 1, "prot": 3]))
        _ = d.decode(ProbeFormats.record("pin", time: 200, pid: 7, ["group": 5, "iova": 0x2000, "npage": 1, "prot": 3]))
        let lost = d.takeLosses()
        #expect(lost.count == 2)
        #expect(lost.first?.body == .pin(Pin(group: 5, iova: 0x1000, npage: 1, prot: 3)))
        if case .loss(let l) = lost.last?.body { #expect(l.count == 1 && l.reason.contains("return")) } else { Issue.record("no loss record") }
        // A return without its call waits one more read of the buffers for
        // it, then is a loss.
        #expect(d.decode(ProbeFormats.record("dma_rw_ret", time: 210, pid: 9, ["ret": 0])).isEmpty)
        d.endOfRead()
        #expect(d.takeLosses().isEmpty)
        d.endOfRead()
        let orphan = d.takeLosses()
        if case .loss(let l) = orphan.first?.body { #expect(l.reason.contains("without a recorded call")) } else { Issue.record("no loss record") }
        // The pin of task 7 at 200 is still open: the recording ended during it.
        #expect(d.unfinished().map(\.body) == [.pin(Pin(group: 5, iova: 0x2000, npage: 1, prot: 3))])
        // A return of the wrong kind for the open call.
        _ = d.decode(ProbeFormats.record("pin", time: 300, pid: 7, ["group": 5, "iova": 0x1000, "npage": 1, "prot": 3]))
        let mismatch = d.decode(ProbeFormats.record("dma_rw_ret", time: 310, pid: 7, ["ret": 0]))
        if case .loss(let l) = mismatch.first?.body { #expect(l.reason.contains("do not match")) } else { Issue.record("no loss record") }
        // Records of events it does not know are skipped.
        #expect(d.decode(RingBufferPage.Record(time: 1, data: [0x99, 0x99, 0, 0])).isEmpty)
    }

    @Test("a return read before its call (committed on another CPU later) still pairs with it")
    func returnBeforeCall() {
        var d = ProbeFormats.decoder()
        #expect(d.decode(ProbeFormats.record("pin_ret", time: 150, pid: 7, ["ret": 1])).isEmpty)
        d.endOfRead()
        let pin = d.decode(ProbeFormats.record("pin", time: 100, pid: 7, ["group": 5, "iova": 0x3000, "npage": 1, "prot": 3]))
        #expect(pin.map(\.body) == [.pin(Pin(group: 5, iova: 0x3000, npage: 1, prot: 3, result: .ok(1)))])
        d.endOfRead()
        d.endOfRead()
        #expect(d.takeLosses().isEmpty && d.unfinished().isEmpty)
        // An unfinished early return is a loss at the end.
        #expect(d.decode(ProbeFormats.record("dma_rw_ret", time: 300, pid: 8, ["ret": 0])).isEmpty)
        if case .loss = d.unfinished().first?.body {} else { Issue.record("an orphan return must end as a loss") }
    }

    @Test("probe definitions fetch the group through the three BTF offsets")
    func definitions() {
        let defs = KernelPinTracer.probeDefinitions(group: "vfiotrace_1", suffix: "_1", offsets: [1064, 72, 704])
        #expect(defs.count == KernelPinTracer.eventNames.count)
        #expect(defs[0] == "p:vfiotrace_1/pin_1 vfio_pin_pages group=+704(+72(+1064($arg1))):s32 iova=$arg2:x64 npage=$arg3:s32 prot=$arg4:s32")
        for (d, name) in zip(defs, KernelPinTracer.eventNames) { #expect(d.contains("vfiotrace_1/\(name)_1 ")) }
    }
}

@Suite("Kernel event order")
struct KernelEventOrderTests {
    @Test("sorted by time, and events of equal time keep their order (a loss stays ahead of its page)")
    func stableTimeOrder() {
        let loss = KernelPinTracer.Decoded(time: 50, tid: 0, body: .loss(Loss(count: 3, reason: "lost")))
        let unpin = KernelPinTracer.Decoded(time: 50, tid: 7, body: .unpin(Unpin(group: 5, iova: 0x1000, npage: 1)))
        let early = KernelPinTracer.Decoded(time: 10, tid: 7, body: .unpin(Unpin(group: 5, iova: 0, npage: 1)))
        for _ in 0..<50 {
            let sorted = KernelPinTracer.inTimeOrder([loss, unpin, early] + Array(repeating: unpin, count: 20))
            #expect(sorted.first?.time == 10)
            #expect(sorted[1].body == loss.body, "the loss record must stay ahead of the events it precedes")
        }
    }
}

/// The pre-6.0 probes (5.8 to 5.19; Debian's 5.10 in the lab): pfn arrays,
/// and dma_rw's group learned from the call that handed its pointer out.
@Suite("Kernel pin events before 6.0")
struct PfnArrayPinDecoderTests {
    static let all: [(String, Int, [(String, String, Int, Int, Bool)])] = [
        ("pin", 1800, ProbeFormats.entry + [("s32", "group", 16, 4, true), ("u64", "iova", 20, 8, false), ("s32", "npage", 28, 4, true), ("s32", "prot", 32, 4, true)]),
        ("pin_ret", 1801, ProbeFormats.ret),
        ("unpin", 1802, ProbeFormats.entry + [("s32", "group", 16, 4, true), ("u64", "iova", 20, 8, false), ("s32", "npage", 28, 4, true)]),
        ("dma_rw", 1803, ProbeFormats.entry + [("u64", "vgroup", 16, 8, false), ("u64", "iova", 24, 8, false), ("u64", "len", 32, 8, false), ("u8", "write", 40, 1, false)]),
        ("dma_rw_ret", 1804, ProbeFormats.ret),
        ("group_get", 1805, ProbeFormats.entry + [("s32", "group", 16, 4, true)]),
        ("group_get_ret", 1806, [("unsigned long", "__probe_func", 8, 8, false), ("unsigned long", "__probe_ret_ip", 16, 8, false), ("u64", "vgroup", 24, 8, false)]),
    ]

    static func decoder() -> PinEventDecoder {
        var formats: [UInt16: (name: String, format: TraceEventFormat)] = [:]
        for (name, id, fields) in all { formats[UInt16(id)] = (name, TraceEventFormat(text: ProbeFormats.text(name, id: id, fields: fields))!) }
        return PinEventDecoder(formats: formats, pageSize: 4096)
    }

    static func record(_ name: String, time: UInt64, pid: Int32, _ values: [String: Int64]) -> RingBufferPage.Record {
        ProbeFormats.record(name, time: time, pid: pid, values, in: all, size: 48)
    }

    @Test("a pin's first pfn becomes its IOVA; dma_rw's group is the one its vfio_group pointer was handed out for")
    func decodes() throws {
        var d = Self.decoder()
        let pointer: Int64 = 0x7fff_8880_1234_0000
        #expect(d.decode(Self.record("group_get", time: 1, pid: 7, ["group": 20])).isEmpty)
        #expect(d.decode(Self.record("group_get_ret", time: 2, pid: 7, ["vgroup": pointer])).isEmpty)
        #expect(d.decode(Self.record("pin", time: 3, pid: 7, ["group": 20, "iova": 5, "npage": 2, "prot": 3])).isEmpty)
        let pin = d.decode(Self.record("pin_ret", time: 4, pid: 7, ["ret": 2]))
        guard case .pin(let p)? = pin.first?.body else { Issue.record("\(pin)"); return }
        #expect(p.group == 20 && p.iova == 0x5000 && p.npage == 2 && p.result == .ok(2))
        let unpin = d.decode(Self.record("unpin", time: 5, pid: 7, ["group": 20, "iova": 6, "npage": 1]))
        guard case .unpin(let u)? = unpin.first?.body else { Issue.record("\(unpin)"); return }
        #expect(u.iova == 0x6000 && u.group == 20)
        #expect(d.decode(Self.record("dma_rw", time: 6, pid: 7, ["vgroup": pointer, "iova": 0x1000, "len": 8, "write": 1])).isEmpty)
        let rw = d.decode(Self.record("dma_rw_ret", time: 7, pid: 7, ["ret": 0]))
        guard case .dmaRW(let w)? = rw.first?.body else { Issue.record("\(rw)"); return }
        #expect(w.group == 20 && w.iova == 0x1000 && w.length == 8 && w.write && w.result == .ok(0))
    }

    @Test("a dma_rw through a group handed out before recording is one loss record, its return dropped with it; an error pointer hands out nothing")
    func unknownGroup() {
        var d = Self.decoder()
        #expect(d.decode(Self.record("group_get", time: 1, pid: 7, ["group": 20])).isEmpty)
        #expect(d.decode(Self.record("group_get_ret", time: 2, pid: 7, ["vgroup": -22])).isEmpty)
        let rw = d.decode(Self.record("dma_rw", time: 3, pid: 7, ["vgroup": -22, "iova": 0x1000, "len": 8, "write": 1]))
        guard case .loss(let l)? = rw.first?.body else { Issue.record("\(rw)"); return }
        #expect(l.reason.contains("handed out before recording started"))
        #expect(d.decode(Self.record("dma_rw_ret", time: 4, pid: 7, ["ret": 0])).isEmpty)
        d.endOfRead(); d.endOfRead()
        #expect(d.takeLosses().isEmpty && d.unfinished().isEmpty)
    }

    @Test("probe definitions: the group through device.iommu_group, the first pfn by dereference; the API by release")
    func definitions() {
        let defs = KernelPinTracer.pfnArrayProbeDefinitions(group: "vfiotrace_1", suffix: "_1", offsets: [600, 704])
        #expect(defs.count == KernelPinTracer.pfnArrayEventNames.count)
        #expect(defs[0] == "p:vfiotrace_1/pin_1 vfio_pin_pages group=+704(+600($arg1)):s32 iova=+0($arg2):x64 npage=$arg3:s32 prot=$arg4:s32")
        #expect(defs[3] == "p:vfiotrace_1/dma_rw_1 vfio_dma_rw vgroup=$arg1:x64 iova=$arg2:x64 len=$arg4:u64 write=$arg5:u8")
        for (d, name) in zip(defs, KernelPinTracer.pfnArrayEventNames) { #expect(d.contains("vfiotrace_1/\(name)_1 ")) }
        #expect(KernelPinTracer.API(release: "5.10.0-32-amd64") == .pfnArrays)
        #expect(KernelPinTracer.API(release: "5.8.0") == .pfnArrays)
        #expect(KernelPinTracer.API(release: "6.1.0-56-amd64") == .vfioDevice)
        #expect(KernelPinTracer.API(release: "6.12.117+deb12-amd64") == .vfioDevice)
        #expect(KernelPinTracer.API(release: "5.4.0") == nil)
        #expect(KernelPinTracer.API(release: "4.19.0-26-amd64") == nil)
    }
}
