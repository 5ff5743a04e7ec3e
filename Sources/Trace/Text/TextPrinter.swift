/// Prints events in the text form, one line each (see ``TextSyntax``).
/// Feed it every event in order: what it leaves out depends on the events
/// before.
public struct TextPrinter {
    private var d = TextDefaults()

    public init() {}

    /// The `!key value` lines that carry a trace header in text.
    public static func headerLines(_ h: TraceHeader) -> [String] {
        var out: [String] = []
        if h.formatMajor != TraceHeader.currentMajor || h.formatMinor != TraceHeader.currentMinor {
            out.append("!format \(h.formatMajor).\(h.formatMinor)")
        }
        if !h.kernelRelease.isEmpty { out.append("!kernel " + TextSyntax.headerValue(h.kernelRelease)) }
        if !h.host.isEmpty { out.append("!host " + TextSyntax.headerValue(h.host)) }
        if !h.tool.isEmpty { out.append("!tool " + TextSyntax.headerValue(h.tool)) }
        if !h.captureMode.isEmpty { out.append("!mode " + TextSyntax.headerValue(h.captureMode)) }
        if h.pageSize != 4096 { out.append("!page_size \(h.pageSize)") }
        if h.createdAt != 0 { out.append("!created \(h.createdAt)") }
        return out
    }

    public mutating func line(for e: Event) -> String {
        var parts: [String] = []
        if e.seq != d.seq { parts.append("#\(e.seq)") }
        if e.time != d.time { parts.append(TextSyntax.time(e.time)) }
        if e.tid != d.tid { parts.append("tid=\(e.tid)") }
        var out: [String] = []
        body(e.body, &parts, &out)
        d.advance(past: e)
        var s = parts.joined(separator: " ")
        if !out.isEmpty { s += " -> " + out.joined(separator: " ") }
        // A device or data fd's request by name, with what its bytes say:
        // a comment, so the line compiles to the same exact bytes.
        if case .rawIoctl(let x) = e.body, let d = DeviceIoctl(x) { s += "  # " + d.description }
        return s
    }

    private func fd(_ fd: Int32, default def: Int32?, _ parts: inout [String]) {
        if fd != def { parts.append("fd=\(fd)") }
    }

    private func result(_ r: CallResult?, _ out: inout [String]) {
        switch r {
        case nil: break
        case .ok(0)?: out.append("ok")
        case .ok(let v)?: out.append(String(v))
        case .error(let e)?: out.append(ErrnoName.name(e))
        }
    }

    /// Outcome fields need a leading result token; `-` stands for "not stated".
    private func ensureResult(_ out: inout [String]) {
        if out.isEmpty { out.append("-") }
    }

    private func bitmapArg(_ b: BitmapArg, rangeSize: UInt64, _ parts: inout [String]) {
        if b.pgsize != 4096 { parts.append("pgsize=\(TextSyntax.size(b.pgsize))") }
        if b.size != TextSyntax.defaultBitmapSize(rangeSize: rangeSize, pgsize: b.pgsize) {
            parts.append("bitmap_size=\(TextSyntax.size(b.size))")
        }
        if b.data != .valid { parts.append("data=\(TextSyntax.pointer(b.data))") }
        if let p = b.prior {
            parts.append("prior=" + TextSyntax.bitmap(p, defaultCount: TextSyntax.defaultCapturedBytes(b.size)))
        }
    }

    private func body(_ b: EventBody, _ p: inout [String], _ out: inout [String]) {
        switch b {
        case .open(let e):
            p.append("open")
            p.append(TextSyntax.word(e.path))
            result(e.result, &out)
        case .close(let e):
            p.append("close")
            p.append("fd=\(e.fd)")
            result(e.result, &out)
        case .getAPIVersion(let e):
            p.append("get_api_version")
            fd(e.fd, default: d.containerFD, &p)
            result(e.result, &out)
        case .checkExtension(let e):
            p.append("check_extension")
            p.append(TextSyntax.extensionName(e.ext))
            fd(e.fd, default: d.containerFD, &p)
            result(e.result, &out)
        case .setIOMMU(let e):
            p.append("set_iommu")
            p.append(TextSyntax.extensionName(e.iommuType))
            fd(e.fd, default: d.containerFD, &p)
            result(e.result, &out)
        case .getInfo(let e):
            p.append("get_info")
            fd(e.fd, default: d.containerFD, &p)
            if e.argsz != VFIOUAPI.iommuInfoSize { p.append("argsz=\(e.argsz)") }
            result(e.result, &out)
            if let i = e.info {
                ensureResult(&out)
                out.append("argsz=\(i.argsz)")
                out.append("flags=" + TextSyntax.flags(i.flags, VFIOUAPI.infoFlags))
                out.append("pgsizes=" + TextSyntax.hex(i.iovaPgsizes))
                out.append("cap_offset=\(i.capOffset)")
                for c in i.caps { out.append("cap=" + Self.capability(c)) }
            }
        case .mapDMA(let e):
            p.append("map_dma")
            fd(e.fd, default: d.containerFD, &p)
            p.append("iova=" + TextSyntax.hex(e.iova))
            p.append("size=" + TextSyntax.size(e.size))
            if e.flags != 3 { p.append("flags=" + TextSyntax.flags(e.flags, VFIOUAPI.mapFlags)) }
            if e.vaddr != .valid { p.append("vaddr=" + TextSyntax.pointer(e.vaddr)) }
            if e.argsz != VFIOUAPI.dmaMapSize { p.append("argsz=\(e.argsz)") }
            result(e.result, &out)
        case .unmapDMA(let e):
            p.append("unmap_dma")
            fd(e.fd, default: d.containerFD, &p)
            p.append("iova=" + TextSyntax.hex(e.iova))
            p.append("size=" + TextSyntax.size(e.size))
            let hasBitmap = e.bitmap != nil
            let defFlags: UInt32 = hasBitmap ? VFIOUAPI.unmapFlagGetDirtyBitmap : 0
            if e.flags != defFlags { p.append("flags=" + TextSyntax.flags(e.flags, VFIOUAPI.unmapFlags)) }
            let defArgsz = VFIOUAPI.dmaUnmapMinSize + (hasBitmap ? VFIOUAPI.bitmapSize : 0)
            if e.argsz != defArgsz { p.append("argsz=\(e.argsz)") }
            if let bm = e.bitmap {
                if bm.pgsize == 4096 && bm.size == TextSyntax.defaultBitmapSize(rangeSize: e.size, pgsize: 4096)
                    && bm.data == .valid && bm.prior == nil {
                    p.append("bitmap")
                } else {
                    bitmapArg(bm, rangeSize: e.size, &p)
                }
            }
            result(e.result, &out)
            if let s = e.sizeOut { ensureResult(&out); out.append("size=" + TextSyntax.size(s)) }
            if let o = e.bitmapOut {
                ensureResult(&out)
                out.append("dirty=" + TextSyntax.bitmap(o, defaultCount: TextSyntax.defaultCapturedBytes(e.bitmap?.size ?? 0)))
            }
        case .dirtyPages(let e):
            p.append("dirty")
            fd(e.fd, default: d.containerFD, &p)
            let verb: String? = switch (e.flags, e.range != nil) {
            case (VFIOUAPI.dirtyFlagStart, false): "start"
            case (VFIOUAPI.dirtyFlagStop, false): "stop"
            case (VFIOUAPI.dirtyFlagGetBitmap, true): "get"
            default: nil
            }
            if let verb { p.insert(verb, at: p.firstIndex(of: "dirty")! + 1) } else {
                p.append("flags=" + TextSyntax.flags(e.flags, VFIOUAPI.dirtyFlags))
            }
            let defArgsz = e.range != nil ? VFIOUAPI.dirtyBitmapMinSize + VFIOUAPI.dirtyBitmapGetSize : VFIOUAPI.dirtyBitmapMinSize
            if let r = e.range {
                p.append("iova=" + TextSyntax.hex(r.iova))
                p.append("size=" + TextSyntax.size(r.size))
                bitmapArg(r.bitmap, rangeSize: r.size, &p)
            }
            if e.argsz != defArgsz { p.append("argsz=\(e.argsz)") }
            result(e.result, &out)
            if let o = e.bitmapOut {
                ensureResult(&out)
                out.append("dirty=" + TextSyntax.bitmap(o, defaultCount: TextSyntax.defaultCapturedBytes(e.range?.bitmap.size ?? 0)))
            }
        case .groupGetStatus(let e):
            p.append("group_get_status")
            fd(e.fd, default: d.groupFD, &p)
            if e.argsz != 8 { p.append("argsz=\(e.argsz)") }
            result(e.result, &out)
            if let f = e.flagsOut { ensureResult(&out); out.append("flags=" + TextSyntax.flags(f, VFIOUAPI.groupStatusFlags)) }
        case .groupSetContainer(let e):
            p.append("group_set_container")
            fd(e.fd, default: d.groupFD, &p)
            if e.container != d.containerFD { p.append("container=\(e.container)") }
            p.append("kind=" + e.kind.name)
            result(e.result, &out)
        case .groupUnsetContainer(let e):
            p.append("group_unset_container")
            fd(e.fd, default: d.groupFD, &p)
            result(e.result, &out)
        case .groupGetDeviceFD(let e):
            p.append("group_get_device_fd")
            fd(e.fd, default: d.groupFD, &p)
            p.append("name=" + TextSyntax.quote(e.name))
            result(e.result, &out)
        case .pin(let e):
            p.append("pin")
            p.append("group=\(e.group)")
            p.append("iova=" + TextSyntax.hex(e.iova))
            if e.npage != 1 { p.append("npage=\(e.npage)") }
            if e.prot != 3 { p.append("prot=" + TextSyntax.flags(e.prot, VFIOUAPI.pinProt)) }
            result(e.result, &out)
        case .unpin(let e):
            p.append("unpin")
            p.append("group=\(e.group)")
            p.append("iova=" + TextSyntax.hex(e.iova))
            if e.npage != 1 { p.append("npage=\(e.npage)") }
            result(e.result, &out)
        case .dmaRW(let e):
            p.append("dma_rw")
            p.append("group=\(e.group)")
            p.append("iova=" + TextSyntax.hex(e.iova))
            p.append("len=" + TextSyntax.size(e.length))
            p.append(e.write ? "write" : "read")
            result(e.result, &out)
        case .rawIoctl(let e):
            p.append("ioctl")
            p.append("fd=\(e.fd)")
            p.append("kind=" + e.fdKind.name)
            p.append("req=" + TextSyntax.hex(e.request))
            if !e.argIn.isEmpty { p.append("arg=" + e.argIn.map(TextSyntax.hexByte).joined()) }
            result(e.result, &out)
            if let o = e.argOut { ensureResult(&out); out.append("out=" + (o.isEmpty ? "\"\"" : o.map(TextSyntax.hexByte).joined())) }
        case .marker(let e):
            p.append("marker")
            p.append(TextSyntax.quote(e.text))
        case .loss(let e):
            p.append("loss")
            p.append("count=\(e.count)")
            p.append("reason=" + TextSyntax.quote(e.reason))
        }
    }

    /// `migration@24:v1,next=48,flags=0,hole=0,pgsizes=0x1000,max=256M`.
    /// One capability in the text form.
    public static func capability(_ c: InfoCapability) -> String {
        let name: String = switch c.body {
        case .iovaRanges: "iova_range"
        case .migration: "migration"
        case .dmaAvail: "dma_avail"
        case .raw: "id\(c.id)"
        }
        var s = "\(name)@\(c.offset):v\(c.version),next=\(c.next)"
        let expectedID: UInt16? = switch c.body {
        case .iovaRanges: VFIOUAPI.capIOVARange
        case .migration: VFIOUAPI.capMigration
        case .dmaAvail: VFIOUAPI.capDMAAvail
        case .raw: nil
        }
        if let expectedID, expectedID != c.id { s += ",id=\(c.id)" }
        switch c.body {
        case .iovaRanges(let rs):
            s += ",ranges=" + rs.map { TextSyntax.hex($0.start) + "-" + TextSyntax.hex($0.end) }.joined(separator: "/")
        case .migration(let f, let hole, let pg, let mx):
            s += ",flags=\(f),hole=\(TextSyntax.hex(UInt64(hole))),pgsizes=\(TextSyntax.hex(pg)),max=\(TextSyntax.size(mx))"
        case .dmaAvail(let n):
            s += ",avail=\(n)"
        case .raw(let b):
            s += ",raw=" + b.map(TextSyntax.hexByte).joined()
        }
        return s
    }
}
